import torch.distributed as dist

from framework.strategy.processes import end_process_group


def test_the_process_group_is_destroyed_after_a_run_and_ending_twice_is_harmless(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    end_process_group()
    assert not dist.is_initialized()
    end_process_group()  # a one-process run never started one
    assert not dist.is_initialized()
