"""boards/*.yaml and fpga_gen.boards: the seven shipped boards, user board files, one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from fpga_gen.boards import Board, BoardError, board_from_dict, list_boards, load_board
from fpga_gen.data_paths import boards_dir

SEVEN = ["kv260", "pynq-z1", "pynq-z2", "ultra96v2", "zcu102", "zcu104", "zedboard"]

# AMD data sheets (DS190 Zynq-7000, DS891 Zynq UltraScale+, DS987 K26 SOM)
XC7Z020 = {"LUT": 53200, "FF": 106400, "BRAM_18K": 280, "DSP": 220, "URAM": 0}
EXPECTED = {
    "pynq-z1": ("xc7z020clg400-1", "www.digilentinc.com:pynq-z1:part0:1.0", "ps7", XC7Z020),
    "pynq-z2": ("xc7z020clg400-1", "tul.com.tw:pynq-z2:part0:1.0", "ps7", XC7Z020),
    "zedboard": ("xc7z020clg484-1", "avnet.com:zedboard:part0:1.4", "ps7", XC7Z020),
    "ultra96v2": ("xczu3eg-sbva484-1-i", "avnet.com:ultra96v2:part0:1.2", "zynq_ultra_ps_e",
                  {"LUT": 70560, "FF": 141120, "BRAM_18K": 432, "DSP": 360, "URAM": 0}),
    "zcu102": ("xczu9eg-ffvb1156-2-e", "xilinx.com:zcu102:part0:3.4", "zynq_ultra_ps_e",
               {"LUT": 274080, "FF": 548160, "BRAM_18K": 1824, "DSP": 2520, "URAM": 0}),
    "zcu104": ("xczu7ev-ffvc1156-2-e", "xilinx.com:zcu104:part0:1.1", "zynq_ultra_ps_e",
               {"LUT": 230400, "FF": 460800, "BRAM_18K": 624, "DSP": 1728, "URAM": 96}),
    "kv260": ("xck26-sfvc784-2LV-c", "xilinx.com:kv260_som:part0:1.3", "zynq_ultra_ps_e",
              {"LUT": 117120, "FF": 234240, "BRAM_18K": 288, "DSP": 1248, "URAM": 64}),
}

GOOD = {
    "name": "my-board", "part": "xc7z020clg400-1", "board_part": "tul.com.tw:pynq-z2:part0:1.0",
    "processing_system": "ps7", "clock_period": 10.0, "dma_width": 64,
    "resources": {"LUT": 53200, "FF": 106400, "BRAM_18K": 280, "DSP": 220},
}


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_list_boards_is_the_seven():
    assert list_boards() == SEVEN


@pytest.mark.parametrize("name", SEVEN)
def test_shipped_board(name):
    b = load_board(name)
    part, board_part, ps, res = EXPECTED[name]
    assert isinstance(b, Board)
    assert (b.name, b.part, b.board_part, b.processing_system) == (name, part, board_part, ps)
    assert b.resources == res
    assert b.clock_period == 10.0 and b.clock_mhz == 100.0
    assert b.dma_width == 64
    assert b.description and b.board_files
    assert b.board_part_candidates[0] == board_part


def test_shipped_files_are_data_only_and_named_after_the_board():
    for p in sorted(boards_dir().glob("*.yaml")):
        data = yaml.safe_load(p.read_text())
        assert data["name"] == p.stem
        assert set(data) <= {"name", "description", "part", "board_part", "board_part_alternatives",
                             "processing_system", "clock_period", "dma_width", "resources", "board_files"}


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(BoardError) as e:
        load_board("pynq-z3")
    assert str(e.value) == ("unknown board 'pynq-z3'; known boards: kv260, pynq-z1, pynq-z2, ultra96v2, zcu102, "
                            "zcu104, zedboard (or give the path of your own board YAML file)")


def test_user_board_file(tmp_path):
    p = write_yaml(tmp_path / "my_board.yaml", GOOD)
    b = load_board(str(p))
    assert b.name == "my-board" and b.resources["URAM"] == 0 and b.source == str(p)
    assert load_board(p) == b          # a Path works too


def test_user_board_missing_field_exact_error(tmp_path):
    data = {k: v for k, v in GOOD.items() if k != "board_part"}
    p = write_yaml(tmp_path / "my_board.yaml", data)
    with pytest.raises(BoardError) as e:
        load_board(str(p))
    assert str(e.value) == f"{p}: missing field 'board_part'; add it, e.g. board_part: tul.com.tw:pynq-z2:part0:1.0"


def test_user_board_missing_resource_exact_error(tmp_path):
    data = dict(GOOD, resources={"LUT": 1000, "FF": 2000, "BRAM_18K": 10})
    p = write_yaml(tmp_path / "b.yaml", data)
    with pytest.raises(BoardError) as e:
        load_board(p)
    assert str(e.value) == (f"{p}: resources: missing 'DSP'; add the device total from the AMD data sheet, "
                            f"e.g. DSP: 220")


@pytest.mark.parametrize("change, message", [
    ({"processing_system": "ps8"}, "processing_system must be one of ps7, zynq_ultra_ps_e"),
    ({"dma_width": 48}, "dma_width must be one of 32, 64, 128, 256, 512, 1024 bits, got 48"),
    ({"dma_width": 128}, "dma_width 128 is wider than the 64-bit high-performance port of ps7; use dma_width: 64"),
    ({"clock_period": 0}, "clock_period must be the fabric clock period in ns between 1 and 100, got 0"),
    ({"clock_period": "fast"}, "clock_period must be the fabric clock period"),
    ({"board_part": "pynq-z2"}, "board_part must be vendor:board:part0:version"),
    ({"board_part_alternatives": ["bad"]}, "board_part_alternatives[0] must be vendor:board:part0:version"),
    ({"part": "pynq z2"}, "part must be an AMD part name such as xc7z020clg400-1, got 'pynq z2'"),
    ({"name": "My Board"}, "name must be lower-case letters, digits, '-' or '_', got 'My Board'"),
    ({"resources": {"LUT": 1, "FF": 1, "BRAM_18K": 1, "DSP": 1, "CLB": 3}}, "resources: unknown resource 'CLB'"),
    ({"resources": {"LUT": -1, "FF": 1, "BRAM_18K": 1, "DSP": 1}}, "resources.LUT must be a positive whole number"),
    ({"colour": "red"}, "unknown field 'colour'; allowed fields: name, part, board_part"),
])
def test_user_board_invalid_fields(tmp_path, change, message):
    p = write_yaml(tmp_path / "b.yaml", dict(GOOD, **change))
    with pytest.raises(BoardError) as e:
        load_board(p)
    text = str(e.value)
    assert text.startswith(f"{p}: ") and message in text and "\n" not in text


def test_user_board_not_a_mapping_and_bad_yaml(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(BoardError, match=r"list\.yaml: a board file must be a YAML mapping"):
        load_board(p)
    q = tmp_path / "broken.yaml"
    q.write_text("name: [unclosed\n")
    with pytest.raises(BoardError, match=r"broken\.yaml: line \d+: invalid YAML"):
        load_board(q)


def test_missing_board_file(tmp_path):
    with pytest.raises(BoardError, match=r"nope\.yaml: board file not found; give one of the known boards \(kv260"):
        load_board(tmp_path / "nope.yaml")


def test_boards_are_values():
    assert load_board("pynq-z2") == load_board("pynq-z2")
    assert len({load_board("pynq-z2"), load_board("pynq-z2"), load_board("kv260")}) == 2


def test_board_from_dict_mpsoc_allows_128_bits():
    b = board_from_dict(dict(GOOD, processing_system="zynq_ultra_ps_e", dma_width=128), "<test>")
    assert b.is_zynq_mpsoc and b.dma_width == 128


@pytest.mark.slow
def test_boards_ship_in_the_wheel(tmp_path):
    """Built and installed (without dependencies) outside the repository, the seven boards still load."""
    repo = Path(__file__).resolve().parent.parent
    pip = [sys.executable, "-m", "pip"]
    r = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(repo)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    wheel = next((tmp_path / "dist").glob("fpga_gen-*.whl"))
    target = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True)
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from fpga_gen.boards import list_boards, load_board
        import fpga_gen.boards as m
        assert m.__file__.startswith(sys.argv[1]), m.__file__
        print(",".join(list_boards()), load_board("kv260").part)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ",".join(SEVEN) + " xck26-sfvc784-2LV-c"
    shutil.rmtree(target)
