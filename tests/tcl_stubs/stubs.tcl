# Stand-ins for the Vivado and Vitis HLS Tcl commands the generated scripts call.
#
# Loaded by run.tcl before the script under test.  Every stubbed call is appended to the
# file $env(FPGA_GEN_STUB_LOG) as one JSON line {"cmd": ..., "args": [...]} (a run starts with
# a __start__ line naming the tool and the script, several runs may share one log); a command
# that is neither Tcl's own nor stubbed here fails (so a typo or a new command fails the
# test).  The Vivado stubs also keep a small model of the block design (cells, their IP,
# CONFIG properties, pins, connections) and fail like Vivado does on an unknown cell or
# pin, a pin the IP's configuration does not enable, a double connection, and, in
# validate_bd_design, an unconnected required pin, mismatched stream widths or no address map.
#
# Environment: FPGA_GEN_STUB_TOOL (vivado | vitis_hls), FPGA_GEN_STUB_LOG,
# FPGA_GEN_STUB_BOARD_PARTS (installed board parts), FPGA_GEN_STUB_HLS_IP (VLNV of the HLS IP
# found in an ip_repo_paths folder with a component.xml), FPGA_GEN_STUB_HLS_TDATA (its stream width).

namespace eval ::stub {
    variable log [open $::env(FPGA_GEN_STUB_LOG) a]
    fconfigure $log -encoding utf-8
    variable tool $::env(FPGA_GEN_STUB_TOOL)
}

proc ::stub::json_str {s} {
    set out "\""
    foreach ch [split $s ""] {
        scan $ch %c code
        if {$ch eq "\""} {
            append out "\\\""
        } elseif {$ch eq "\\"} {
            append out "\\\\"
        } elseif {$code < 32} {
            append out [format "\\u%04x" $code]
        } else {
            append out $ch
        }
    }
    return "$out\""
}

proc ::stub::record {cmd arglist} {
    variable log
    set items {}
    foreach a $arglist {
        lappend items [json_str $a]
    }
    puts $log "{\"cmd\": [json_str $cmd], \"args\": \[[join $items {, }]\]}"
    flush $log
}

proc ::stub::fail {msg} {
    record __error__ [list $msg]
    return -code error -level 2 "stub: $msg"
}

proc ::stub::touch {path {text ""}} {
    file mkdir [file dirname $path]
    set f [open $path w]
    puts -nonewline $f $text
    close $f
}

# options of a call: {-name value -flag 1 ...} and the positional rest
proc ::stub::parse {arglist flags} {
    set opts [dict create]
    set rest {}
    for {set i 0} {$i < [llength $arglist]} {incr i} {
        set a [lindex $arglist $i]
        if {[string match -* $a] && ![string is double -strict $a]} {
            if {$a in $flags} {
                dict set opts $a 1
            } else {
                incr i
                dict set opts $a [lindex $arglist $i]
            }
        } else {
            lappend rest $a
        }
    }
    return [list $opts $rest]
}

proc unknown {args} {
    ::stub::record __unknown__ $args
    return -code error "stub: unknown command '[lindex $args 0]' (not a Tcl, Vivado or Vitis HLS command stubbed in tests/tcl_stubs)"
}

rename exit ::stub::real_exit
proc exit {{code 0}} {
    ::stub::record exit [list $code]
    close $::stub::log
    ::stub::real_exit $code
}

# ====================================================================== Vitis HLS
if {$::stub::tool eq "vitis_hls"} {
    namespace eval ::stub {
        variable project ""
        variable solution ""
    }
    proc open_project {args} {
        ::stub::record open_project $args
        lassign [::stub::parse $args {-reset}] opts rest
        if {[llength $rest] != 1} { ::stub::fail "open_project takes one project name, got $rest" }
        set ::stub::project [lindex $rest 0]
        file mkdir $::stub::project
    }
    proc set_top {args} {
        ::stub::record set_top $args
        if {$::stub::project eq ""} { ::stub::fail "set_top before open_project" }
    }
    proc add_files {args} {
        ::stub::record add_files $args
        lassign [::stub::parse $args {-tb}] opts rest
        foreach f $rest {
            if {![file exists $f]} { ::stub::fail "add_files: $f does not exist (cwd [pwd])" }
        }
    }
    proc open_solution {args} {
        ::stub::record open_solution $args
        if {$::stub::project eq ""} { ::stub::fail "open_solution before open_project" }
        lassign [::stub::parse $args {-reset}] opts rest
        set ::stub::solution [lindex $rest 0]
    }
    foreach cmd {set_part create_clock set_clock_uncertainty config_export config_compile config_schedule
                 config_array_partition config_interface config_rtl config_cosim config_dataflow} {
        proc $cmd {args} [string map [list CMD $cmd] {
            ::stub::record CMD $args
            if {$::stub::solution eq ""} { ::stub::fail "CMD before open_solution" }
        }]
    }
    foreach cmd {csim_design csynth_design cosim_design} {
        proc $cmd {args} [string map [list CMD $cmd] {
            ::stub::record CMD $args
            if {$::stub::solution eq ""} { ::stub::fail "CMD before open_solution" }
        }]
    }
    proc export_design {args} {
        ::stub::record export_design $args
        if {$::stub::solution eq ""} { ::stub::fail "export_design before open_solution" }
        ::stub::touch [file join $::stub::project $::stub::solution impl ip component.xml] "<component/>"
    }
    proc close_project {args} { ::stub::record close_project $args }
}

# ====================================================================== Vivado
if {$::stub::tool eq "vivado"} {
    namespace eval ::stub {
        variable proj_name ""
        variable proj_dir ""
        variable ip_repos {}
        variable bd ""
        variable cells [dict create]     ;# name -> vlnv
        variable config [dict create]    ;# name -> dict CONFIG.key value
        variable automated {}
        variable connected [dict create] ;# pin -> net id
        variable addressed 0
        variable validated 0
        variable top ""
        # IP catalog of the stub: the newest version of each (older ones too, to test 'latest')
        variable ipdefs {
            xilinx.com:ip:processing_system7:5.4 xilinx.com:ip:processing_system7:5.5
            xilinx.com:ip:zynq_ultra_ps_e:3.4 xilinx.com:ip:zynq_ultra_ps_e:3.5
            xilinx.com:ip:axi_dma:7.1
            xilinx.com:ip:smartconnect:1.0
            xilinx.com:ip:proc_sys_reset:5.0
            xilinx.com:ip:axi_interconnect:2.1
        }
    }

    # pins of each IP: {kind name condition}; condition: {} or {CONFIG.key value} that enables it.
    # 'req' pins must be connected for validate_bd_design.
    proc ::stub::pins {cell} {
        set vlnv [dict get $::stub::cells $cell]
        set ip [lindex [split $vlnv :] 2]
        switch -- $ip {
            processing_system7 {
                return {
                    {intf M_AXI_GP0 req {CONFIG.PCW_USE_M_AXI_GP0 1}}
                    {intf S_AXI_HP0 req {CONFIG.PCW_USE_S_AXI_HP0 1}}
                    {intf DDR opt {}} {intf FIXED_IO opt {}}
                    {pin M_AXI_GP0_ACLK req {CONFIG.PCW_USE_M_AXI_GP0 1}}
                    {pin S_AXI_HP0_ACLK req {CONFIG.PCW_USE_S_AXI_HP0 1}}
                    {pin FCLK_CLK0 opt {}} {pin FCLK_RESET0_N opt {}}
                }
            }
            zynq_ultra_ps_e {
                return {
                    {intf M_AXI_HPM0_FPD req {CONFIG.PSU__USE__M_AXI_GP0 1}}
                    {intf M_AXI_HPM1_FPD req {CONFIG.PSU__USE__M_AXI_GP1 1}}
                    {intf M_AXI_HPM0_LPD req {CONFIG.PSU__USE__M_AXI_GP2 1}}
                    {intf S_AXI_HP0_FPD req {CONFIG.PSU__USE__S_AXI_GP2 1}}
                    {pin maxihpm0_fpd_aclk req {CONFIG.PSU__USE__M_AXI_GP0 1}}
                    {pin maxihpm1_fpd_aclk req {CONFIG.PSU__USE__M_AXI_GP1 1}}
                    {pin maxihpm0_lpd_aclk req {CONFIG.PSU__USE__M_AXI_GP2 1}}
                    {pin saxihp0_fpd_aclk req {CONFIG.PSU__USE__S_AXI_GP2 1}}
                    {pin pl_clk0 opt {}} {pin pl_resetn0 opt {}}
                }
            }
            axi_dma {
                return {
                    {intf S_AXI_LITE req {}} {intf M_AXI_MM2S req {}} {intf M_AXI_S2MM req {}}
                    {intf M_AXIS_MM2S req {}} {intf S_AXIS_S2MM req {}}
                    {intf M_AXI_SG req {CONFIG.c_include_sg 1}}
                    {pin s_axi_lite_aclk req {}} {pin m_axi_mm2s_aclk req {}} {pin m_axi_s2mm_aclk req {}}
                    {pin m_axi_sg_aclk req {CONFIG.c_include_sg 1}}
                    {pin axi_resetn req {}} {pin mm2s_introut opt {}} {pin s2mm_introut opt {}}
                }
            }
            smartconnect {
                set si [expr {[dict exists $::stub::config $cell CONFIG.NUM_SI] ? [dict get $::stub::config $cell CONFIG.NUM_SI] : 1}]
                set mi [expr {[dict exists $::stub::config $cell CONFIG.NUM_MI] ? [dict get $::stub::config $cell CONFIG.NUM_MI] : 1}]
                set l {{pin aclk req {}} {pin aresetn req {}}}
                for {set i 0} {$i < $si} {incr i} { lappend l [list intf [format S%02d_AXI $i] req {}] }
                for {set i 0} {$i < $mi} {incr i} { lappend l [list intf [format M%02d_AXI $i] req {}] }
                return $l
            }
            proc_sys_reset {
                return {
                    {pin slowest_sync_clk req {}} {pin ext_reset_in req {}} {pin aux_reset_in opt {}}
                    {pin mb_debug_sys_rst opt {}} {pin dcm_locked opt {}} {pin peripheral_aresetn opt {}}
                    {pin interconnect_aresetn opt {}} {pin peripheral_reset opt {}} {pin bus_struct_reset opt {}}
                    {pin mb_reset opt {}}
                }
            }
            default {
                if {$vlnv eq $::env(FPGA_GEN_STUB_HLS_IP)} {
                    return {{intf in_stream req {}} {intf out_stream req {}} {pin ap_clk req {}} {pin ap_rst_n req {}}}
                }
                return {}
            }
        }
    }

    proc ::stub::config_of {cell key {default ""}} {
        if {[dict exists $::stub::config $cell $key]} { return [dict get $::stub::config $cell $key] }
        return $default
    }

    proc ::stub::pin_enabled {cell cond} {
        if {$cond eq ""} { return 1 }
        lassign $cond key value
        return [expr {[::stub::config_of $cell $key 0] eq $value}]
    }

    proc ::stub::lookup {kind path} {
        set path [string trimleft $path /]
        set parts [split $path /]
        if {[llength $parts] != 2} { ::stub::fail "get_bd_${kind}s: '$path' is not cell/pin" }
        lassign $parts cell pin
        if {![dict exists $::stub::cells $cell]} { ::stub::fail "get_bd_${kind}s: no cell '$cell' in the block design" }
        foreach p [::stub::pins $cell] {
            lassign $p k name req cond
            if {$k eq $kind && $name eq $pin} {
                if {![::stub::pin_enabled $cell $cond]} {
                    ::stub::fail "get_bd_${kind}s: $cell/$pin exists only with [lindex $cond 0] = [lindex $cond 1]"
                }
                return "/$cell/$pin"
            }
        }
        ::stub::fail "get_bd_${kind}s: cell '$cell' ([dict get $::stub::cells $cell]) has no $kind '$pin'"
    }

    proc create_project {args} {
        ::stub::record create_project $args
        lassign [::stub::parse $args {-force -in_memory}] opts rest
        lassign $rest ::stub::proj_name ::stub::proj_dir
        if {![dict exists $opts -part]} { ::stub::fail "create_project without -part" }
        file mkdir $::stub::proj_dir
    }
    proc current_project {args} { return $::stub::proj_name }
    proc current_fileset {args} { return sources_1 }
    proc get_board_parts {args} {
        ::stub::record get_board_parts $args
        lassign [::stub::parse $args {-quiet -latest_file_version}] opts rest
        set found {}
        foreach bp $::env(FPGA_GEN_STUB_BOARD_PARTS) {
            if {[string match [lindex $rest 0] $bp]} { lappend found $bp }
        }
        return $found
    }
    proc set_property {args} {
        ::stub::record set_property $args
        if {[lindex $args 0] eq "-dict"} {
            set pairs [lindex $args 1]
            set objs [lrange $args 2 end]
        } else {
            set pairs [lrange $args 0 1]
            set objs [lrange $args 2 end]
        }
        if {[llength $pairs] % 2} { ::stub::fail "set_property: odd property list $pairs" }
        foreach obj $objs {
            foreach {k v} $pairs {
                if {[dict exists $::stub::cells $obj]} {
                    dict set ::stub::config $obj $k $v
                } elseif {$obj eq $::stub::proj_name && $k eq "ip_repo_paths"} {
                    set ::stub::ip_repos $v
                } elseif {$obj eq "sources_1" && $k eq "top"} {
                    set ::stub::top $v
                }
            }
        }
    }
    proc get_ipdefs {args} {
        ::stub::record get_ipdefs $args
        lassign [::stub::parse $args {-all -quiet}] opts rest
        set defs $::stub::ipdefs
        foreach repo $::stub::ip_repos {
            if {[file exists [file join $repo component.xml]]} { lappend defs $::env(FPGA_GEN_STUB_HLS_IP) }
        }
        set found {}
        foreach d $defs {
            if {[string match [lindex $rest 0] $d]} { lappend found $d }
        }
        return $found
    }
    proc update_ip_catalog {args} { ::stub::record update_ip_catalog $args }
    proc create_bd_design {args} {
        ::stub::record create_bd_design $args
        set ::stub::bd [lindex $args end]
    }
    proc create_bd_cell {args} {
        ::stub::record create_bd_cell $args
        lassign [::stub::parse $args {}] opts rest
        if {$::stub::bd eq ""} { ::stub::fail "create_bd_cell before create_bd_design" }
        set vlnv [dict get $opts -vlnv]
        if {[llength [get_ipdefs -quiet $vlnv]] != 1} { ::stub::fail "create_bd_cell: IP '$vlnv' is not in the catalog" }
        set name [lindex $rest 0]
        if {[dict exists $::stub::cells $name]} { ::stub::fail "create_bd_cell: cell '$name' exists" }
        dict set ::stub::cells $name $vlnv
        return $name
    }
    proc get_bd_cells {args} {
        lassign [::stub::parse $args {-quiet}] opts rest
        set out {}
        foreach c $rest {
            set c [string trimleft $c /]
            if {![dict exists $::stub::cells $c]} { ::stub::fail "get_bd_cells: no cell '$c'" }
            lappend out $c
        }
        return $out
    }
    proc get_bd_intf_pins {args} { return [::stub::lookup intf [lindex $args end]] }
    proc get_bd_pins {args} { return [::stub::lookup pin [lindex $args end]] }
    proc apply_bd_automation {args} {
        ::stub::record apply_bd_automation $args
        lassign [::stub::parse $args {}] opts rest
        set cell [lindex $rest 0]
        set ip [lindex [split [dict get $::stub::cells $cell] :] 2]
        set rule [dict get $opts -rule]
        if {$rule ne "xilinx.com:bd_rule:$ip"} { ::stub::fail "apply_bd_automation: rule $rule does not apply to $cell ($ip)" }
        lappend ::stub::automated $cell
    }
    proc ::stub::connect {what pins} {
        set net [llength [dict keys $::stub::connected]]
        foreach p $pins {
            if {[dict exists $::stub::connected $p]} { ::stub::fail "$what: $p is already connected" }
            dict set ::stub::connected $p $net
        }
    }
    proc connect_bd_intf_net {args} {
        ::stub::record connect_bd_intf_net $args
        if {[llength $args] != 2} { ::stub::fail "connect_bd_intf_net takes two interface pins, got $args" }
        ::stub::connect connect_bd_intf_net $args
    }
    proc connect_bd_net {args} {
        ::stub::record connect_bd_net $args
        if {[llength $args] < 2} { ::stub::fail "connect_bd_net needs at least two pins, got $args" }
        ::stub::connect connect_bd_net $args
    }
    proc assign_bd_address {args} {
        ::stub::record assign_bd_address $args
        set ::stub::addressed 1
    }
    proc validate_bd_design {args} {
        ::stub::record validate_bd_design $args
        foreach cell [dict keys $::stub::cells] {
            foreach p [::stub::pins $cell] {
                lassign $p k name req cond
                if {$req eq "req" && [::stub::pin_enabled $cell $cond] && ![dict exists $::stub::connected "/$cell/$name"]} {
                    ::stub::fail "validate_bd_design: $cell/$name is not connected"
                }
            }
            set ip [lindex [split [dict get $::stub::cells $cell] :] 2]
            if {$ip in {processing_system7 zynq_ultra_ps_e} && $cell ni $::stub::automated} {
                ::stub::fail "validate_bd_design: $cell was not configured by board automation"
            }
            if {$ip eq "axi_dma"} {
                foreach key {CONFIG.c_m_axis_mm2s_tdata_width CONFIG.c_s_axis_s2mm_tdata_width} {
                    if {[::stub::config_of $cell $key 32] != $::env(FPGA_GEN_STUB_HLS_TDATA)} {
                        ::stub::fail "validate_bd_design: $cell $key is [::stub::config_of $cell $key 32], the HLS IP streams $::env(FPGA_GEN_STUB_HLS_TDATA) bits"
                    }
                }
            }
        }
        if {!$::stub::addressed} { ::stub::fail "validate_bd_design: slave segments are not assigned (assign_bd_address)" }
        set ::stub::validated 1
    }
    proc save_bd_design {args} { ::stub::record save_bd_design $args }
    proc ::stub::bd_dir {kind} {
        return [file join $::stub::proj_dir $::stub::proj_name.$kind sources_1 bd $::stub::bd]
    }
    proc get_files {args} {
        ::stub::record get_files $args
        lassign [::stub::parse $args {-all -quiet}] opts rest
        set bd_file [file join [::stub::bd_dir srcs] $::stub::bd.bd]
        if {[string match [lindex $rest 0] [file tail $bd_file]]} { return $bd_file }
        ::stub::fail "get_files: no file matches [lindex $rest 0]"
    }
    proc generate_target {args} {
        ::stub::record generate_target $args
        if {!$::stub::validated} { ::stub::fail "generate_target before validate_bd_design" }
        ::stub::touch [file join [::stub::bd_dir gen] hw_handoff $::stub::bd.hwh] "<hwh/>"
    }
    proc make_wrapper {args} {
        ::stub::record make_wrapper $args
        set path [file join [::stub::bd_dir gen] hdl ${::stub::bd}_wrapper.v]
        ::stub::touch $path "module ${::stub::bd}_wrapper; endmodule"
        return $path
    }
    proc add_files {args} {
        ::stub::record add_files $args
        foreach f [lindex [::stub::parse $args {-norecurse}] 1] {
            if {![file exists $f]} { ::stub::fail "add_files: $f does not exist" }
        }
    }
    proc update_compile_order {args} { ::stub::record update_compile_order $args }
    proc get_runs {args} { return [lindex $args end] }
    proc launch_runs {args} {
        ::stub::record launch_runs $args
        lassign [::stub::parse $args {}] opts rest
        set run [lindex $rest 0]
        if {$::stub::top eq ""} { ::stub::fail "launch_runs without a top module" }
        if {$run eq "impl_1" && [dict exists $opts -to_step] && [dict get $opts -to_step] eq "write_bitstream"} {
            ::stub::touch [file join $::stub::proj_dir $::stub::proj_name.runs impl_1 $::stub::top.bit] "BIT"
        }
    }
    proc wait_on_run {args} { ::stub::record wait_on_run $args }
    proc get_property {args} {
        lassign $args name obj
        switch -- $name {
            DIRECTORY { return [file join $::stub::proj_dir $::stub::proj_name.runs $obj] }
            PROGRESS { return "100%" }
            STATUS { return "write_bitstream Complete!" }
            STATS.WNS { return 0.250 }
            default { ::stub::fail "get_property $name is not stubbed" }
        }
    }
    proc open_run {args} { ::stub::record open_run $args }
    proc report_utilization {args} {
        ::stub::record report_utilization $args
        ::stub::touch [dict get [lindex [::stub::parse $args {}] 0] -file] "utilization"
    }
    proc report_timing_summary {args} {
        ::stub::record report_timing_summary $args
        ::stub::touch [dict get [lindex [::stub::parse $args {}] 0] -file] "timing"
    }
    proc write_hw_platform {args} {
        ::stub::record write_hw_platform $args
        ::stub::touch [dict get [lindex [::stub::parse $args {-fixed -include_bit -force}] 0] -file] "XSA"
    }
}
