# tclsh run.tcl SCRIPT ?ARG ...?  — source the stubs, then SCRIPT with ::argv = ARGs (as -tclargs gives them).
set here [file dirname [file normalize [info script]]]
source [file join $here stubs.tcl]
set script [lindex $argv 0]
set argv [lrange $argv 1 end]
set argc [llength $argv]
set argv0 $script
::stub::record __start__ [list $::stub::tool $script {*}$argv]
if {[catch {uplevel #0 [list source $script]} msg opts]} {
    ::stub::record __tcl_error__ [list $msg [dict get $opts -errorinfo]]
    puts stderr "Tcl error: $msg\n[dict get $opts -errorinfo]"
    close $::stub::log
    ::stub::real_exit 1
}
::stub::record __end__ {}
close $::stub::log
::stub::real_exit 0
