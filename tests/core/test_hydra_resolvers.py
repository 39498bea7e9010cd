"""Run-folder name resolver."""

from core.hydra import MAX_RUN_NAME, _run_name


def test_run_name_without_and_with_overrides():
    assert _run_name("default", "") == "default"
    assert _run_name("camvid_unet_r18", "epochs-3_lr-0.1") == "camvid_unet_r18__epochs-3_lr-0.1"
    assert _run_name("x", "a-b/c") == "x__a-b_c"  # no sub-folders from override values
    # only characters every entry point takes unquoted (old separators and list brackets are replaced)
    assert _run_name("x", "crop=[64,96],lr=0.1") == "x__crop-64-96-lr-0.1"


def test_long_run_names_are_cut_with_a_distinguishing_hash():
    a = _run_name("default", "lossfunction=[wRMI,wCE,wCE,wCE]," + "x" * 300 + "=1")
    b = _run_name("default", "lossfunction=[wRMI,wCE,wCE,wCE]," + "x" * 300 + "=2")
    assert len(a) == len(b) == MAX_RUN_NAME and a != b
    assert a.startswith("default__lossfunction-wRMI-wCE-wCE-wCE-")
