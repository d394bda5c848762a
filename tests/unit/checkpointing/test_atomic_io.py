import pickle

import pytest
import torch

from framework.checkpointing import AtomicCheckpointIO, load_checkpoint_file


def test_atomic_save_keeps_the_previous_checkpoint_when_a_save_crashes(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 5, "weights": torch.arange(4.0)}, path)
    original = path.read_bytes()

    def crash_mid_write(obj, file, **kwargs):
        file.write(b"partial bytes of a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"global_step": 6, "weights": torch.zeros(4)}, path)
    assert path.read_bytes() == original
    assert io.load_checkpoint(path)["global_step"] == 5
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left


class Payload:
    def __reduce__(self):
        return (print, ("this ran while loading a checkpoint",))


def test_checkpoints_load_without_running_code(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint_file(path)
    with pytest.raises(pickle.UnpicklingError):
        AtomicCheckpointIO().load_checkpoint(path)
