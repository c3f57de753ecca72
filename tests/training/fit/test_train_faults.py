"""``train`` onto a disk that fills up at the first checkpoint: one line, exit 1, no TensorFlow temp folder left."""

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from tests.fault_disks import mounted_tmpfs

pytestmark = pytest.mark.slow


def test_disk_full_at_the_first_checkpoint():
    # Measured for `train digits --size 8`: split.json 74 KB is written before training, each
    # checkpoint's data file about 1.07 MB; 512 KiB holds the first and not the second.
    with mounted_tmpfs("size=512k") as disk:
        run = disk / "run"
        result = CliRunner().invoke(cli, ["train", "digits", "--out", str(run), "--size", "8", "--epochs", "1"])
        assert result.exit_code == 1, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith(f"Error: cannot write checkpoint {run / 'checkpoints'}/"), result.output
        assert "free some space there or choose another --out" in last
        assert "Traceback" not in result.output
        leftovers = sorted(p.name for p in (run / "checkpoints").iterdir())
        assert not [name for name in leftovers if "_temp" in name or name.endswith(".data-00000-of-00001")], leftovers
        assert not (run / "float.keras").exists()
