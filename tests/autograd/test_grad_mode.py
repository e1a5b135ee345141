"""The grad mode is per thread, as PyTorch's."""
import threading

import minitf as mt


def run_in_thread(fn):
    """fn() in a new thread; its result, or the exception it raised."""
    out = {}

    def target():
        try:
            out["result"] = fn()
        except BaseException as error:  # noqa: BLE001 (handed to the caller)
            out["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["result"]


def test_a_new_thread_starts_with_grad_enabled_whatever_the_caller_mode():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with mt.no_grad():
        enabled, recorded = run_in_thread(lambda: (mt.is_grad_enabled(), (x * 2.0).requires_grad))
        assert not mt.is_grad_enabled() and not (x * 2.0).requires_grad
    assert enabled and recorded


def test_no_grad_in_one_thread_leaves_another_threads_mode_alone():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    entered, release = threading.Event(), threading.Event()
    seen = {}

    def other():
        with mt.no_grad():
            entered.set()
            release.wait(10)
            seen["other"] = (mt.is_grad_enabled(), (x * 2.0).requires_grad)
        seen["other after"] = mt.is_grad_enabled()

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(10)
    seen["main"] = (mt.is_grad_enabled(), (x * 2.0).requires_grad)  # while the other is inside no_grad
    release.set()
    thread.join()
    assert seen == {"main": (True, True), "other": (False, False), "other after": True}
    assert mt.is_grad_enabled()


def test_one_no_grad_decorator_used_by_two_threads_at_once():
    """Each thread restores its own mode, whatever the order in which they leave the decorator."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    @mt.no_grad()
    def inside(entered, leave):
        entered.set()
        assert leave.wait(10)

    def first():  # grad on: enters first, leaves first
        inside(first_in, second_in)
        first_out.set()
        return mt.is_grad_enabled()

    def second():  # grad off already: enters second, leaves last
        assert first_in.wait(10)
        with mt.no_grad():
            inside(second_in, first_out)
            return mt.is_grad_enabled()

    results = {}
    threads = [threading.Thread(target=lambda f=f: results.update({f.__name__: f()})) for f in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"first": True, "second": False}
