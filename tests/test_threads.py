"""The engine's thread policy: one thread unless the environment says otherwise."""
import pytest
import torch

from subspace_kit import threads


def test_default_policy_is_one_thread(monkeypatch):
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    assert threads.policy_threads() == 1
    before = torch.get_num_threads()
    with threads.engine_threads() as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_environment_sets_the_count(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.policy_threads() == 3


def test_auto_uses_idle_cpus_within_the_affinity_mask(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "auto")
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert threads.policy_threads() == threads.usable_cpus()
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (50.0, 0.0, 0.0))
    assert threads.policy_threads() == 1  # a busy machine gets one thread
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert threads.policy_threads() == 1  # pinned to one CPU (taskset -c 0)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_environment_value_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(threads.THREADS_ENV, value)
    with pytest.raises(ValueError, match=threads.THREADS_ENV):
        threads.policy_threads()
