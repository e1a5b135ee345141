"""minitf.cpu: the thread pool, the blocking policy, blocked products and the fused ops run in blocks.

Small inputs are split by lowering the pool's work thresholds (the `split_small` fixture), and
every blocked result is compared with the same computation on one thread. Blocks cut rows or
columns, never the terms of a sum, so the two agree to rounding (BLAS and NumPy's SIMD loops may
round a block's edge rows or columns differently), and a given thread count gives the same bits
every run.
"""
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minitf
import minitf.functional as F
from minitf import cpu, tensor
from minitf.cpu import blocking, pool, threads as thread_count
from minitf.errors import ConfigError


@pytest.fixture(autouse=True)
def restore_threads():
    """Every test here leaves minitf's thread count and NumPy's BLAS threads as it found them: a later
    test (in this process) computes with them, and BLAS on 2 threads rounds differently than on 1."""
    from threadpoolctl import threadpool_info, threadpool_limits
    before = cpu.get_num_threads()
    blas = {lib["prefix"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    yield
    cpu.set_num_threads(before)
    threadpool_limits(blas)  # {library prefix: threads}


@pytest.fixture
def split_small(monkeypatch):
    """Split even tiny arrays and products; restore the thread count afterwards."""
    monkeypatch.setattr(blocking, "MIN_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(blocking, "MIN_PRODUCT_FLOPS", 1)
    monkeypatch.setattr(blocking, "CHUNK_BYTES", 1)  # convolutions: one image per chunk
    before = cpu.get_num_threads()
    yield
    cpu.set_num_threads(before)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- the pool ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_what_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match="positive int"):
        cpu.set_num_threads(bad)


def test_num_threads_default_reads_the_environment(monkeypatch):
    monkeypatch.setenv("MINITF_NUM_THREADS", "3")
    assert thread_count.default_threads() == 3
    monkeypatch.setenv("MINITF_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="MINITF_NUM_THREADS.*'many'"):
        thread_count.default_threads()
    monkeypatch.delenv("MINITF_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert thread_count.default_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(thread_count.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert thread_count.default_threads() == 8
    monkeypatch.setenv("MPI_LOCALNRANKS", "3")  # three processes of an MPI job share the 8 CPUs
    assert thread_count.default_threads() == 2
    monkeypatch.setenv("MPI_LOCALNRANKS", "16")
    assert thread_count.default_threads() == 1


@pytest.mark.parametrize("bad", ["0", "-2", "abc", "2.5", "4,2", "10" * 15])
def test_minitf_num_threads_is_refused_as_set_num_threads_refuses_its_n(monkeypatch, bad):
    monkeypatch.setenv("MINITF_NUM_THREADS", bad)
    with pytest.raises(ConfigError, match=f"MINITF_NUM_THREADS must be a positive int of at most "
                                          f"{cpu.max_threads()} .*got '{bad}'"):
        thread_count.default_threads()


def test_set_num_threads_is_capped_at_four_threads_per_cpu():
    cap = 4 * (os.cpu_count() or 1)
    assert cpu.max_threads() == cap
    for n in (cap + 1, 10**30):
        with pytest.raises(ConfigError, match=f"n must be a positive int of at most {cap} .*got {n}"):
            cpu.set_num_threads(n)


def test_omp_num_threads_gives_its_first_number_and_is_ignored_if_not_understood(monkeypatch):
    monkeypatch.delenv("MINITF_NUM_THREADS", raising=False)
    monkeypatch.setattr(thread_count.os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
    for value, threads in [("4,2", 4), (" 3 , 1", 3), ("abc", 2), ("0", 2), ("-2", 2), (",", 2),
                           ("1000000", cpu.max_threads())]:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert thread_count.default_threads() == threads, value


def test_import_survives_the_environment_and_an_invalid_count_is_refused_at_first_use():
    code = ("import os, minitf\n"
            "from minitf.cpu import threads as thread_count\n"
            "try:\n    minitf.get_num_threads()\nexcept minitf.errors.ConfigError as e:\n    print(e)\n"
            "minitf.set_num_threads(2)\n"  # a call replaces the environment's count
            "del os.environ['MINITF_NUM_THREADS']\n"
            "print(minitf.get_num_threads(), thread_count.default_threads())\n")
    env = dict(os.environ, MINITF_NUM_THREADS="abc", OMP_NUM_THREADS="4,2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"environment variable MINITF_NUM_THREADS must be a positive int of at "
                                       f"most {cpu.max_threads()} (4 threads per CPU of this machine), "
                                       f"got 'abc'", "2 4"]


@pytest.mark.parametrize("bad", ["abc", "-2"])
def test_the_command_reports_an_invalid_minitf_num_threads_in_one_line(tmp_path, bad):
    env = dict(os.environ, MINITF_NUM_THREADS=bad)
    out = subprocess.run([sys.executable, "-m", "minitf.cli", "translate", "--checkpoint", str(tmp_path / "x")],
                         env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [f"minitf: error: environment variable MINITF_NUM_THREADS must be a "
                                       f"positive int of at most {cpu.max_threads()} (4 threads per CPU "
                                       f"of this machine), got {bad!r}"]


def test_set_num_threads_inside_a_task_is_an_error(split_small):
    cpu.set_num_threads(2)
    with pytest.raises(RuntimeError, match="inside one of minitf's parallel tasks"):
        cpu.run_tasks([lambda: None, lambda: cpu.set_num_threads(3)])


def test_top_level_names_reach_the_pool(split_small):
    minitf.set_num_threads(3)
    assert minitf.get_num_threads() == cpu.get_num_threads() == 3


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("n_tasks", [1, 2, 3, 7])
def test_run_tasks_runs_every_task_once_on_several_threads(split_small, threads, n_tasks):
    cpu.set_num_threads(threads)
    ran, names = [], set()
    barrier = threading.Barrier(min(threads, n_tasks)) if threads > 1 and n_tasks > 1 else None

    def task(i):
        if barrier is not None and i < min(threads, n_tasks):
            barrier.wait(timeout=10)  # only passes if that many tasks really run at once
        ran.append(i)
        names.add(threading.current_thread().name)

    cpu.run_tasks([lambda i=i: task(i) for i in range(n_tasks)])
    assert sorted(ran) == list(range(n_tasks))
    assert len(names) == min(threads, n_tasks)


def test_run_tasks_reraises_a_workers_error_after_all_tasks_end(split_small):
    cpu.set_num_threads(3)
    finished = []

    def fail():
        raise KeyError("block 2")

    def slow():
        threading.Event().wait(0.05)
        finished.append(True)

    with pytest.raises(KeyError, match="block 2"):
        cpu.run_tasks([slow, fail, slow])
    assert finished == [True, True]
    cpu.run_tasks([slow, slow])  # the pool still works


def test_a_task_that_uses_the_pool_runs_its_subtasks_inline(split_small):
    cpu.set_num_threads(2)
    inner = []
    cpu.run_tasks([lambda: cpu.run_tasks([lambda: inner.append(threading.current_thread().name)] * 2)] * 2)
    assert len(inner) == 4


def test_numpy_errstate_of_the_caller_holds_in_the_workers(split_small):
    cpu.set_num_threads(2)
    x = np.array([0.0])
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            cpu.run_tasks([lambda: None, lambda: 1.0 / x])
    with np.errstate(divide="ignore"):
        cpu.run_tasks([lambda: 1.0 / x, lambda: 1.0 / x])  # no warning (the suite errors on none)


@given(n=st.integers(0, 50), min_size=st.integers(1, 60), threads=st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_blocks_cover_the_range_in_order_and_respect_the_minimum(n, min_size, threads):
    before, threads = cpu.get_num_threads(), min(threads, cpu.max_threads())  # 1 CPU: 4 at most
    try:
        cpu.set_num_threads(threads)
        parts = cpu.blocks(n, min_size)
    finally:
        cpu.set_num_threads(before)
    assert [i for s in parts for i in range(s.start, s.stop)] == list(range(n))
    assert len(parts) <= threads
    if len(parts) > 1:
        assert min(s.stop - s.start for s in parts) >= min_size


def test_row_blocks_hold_at_least_the_minimum_elements(monkeypatch):
    cpu.set_num_threads(3)
    monkeypatch.setattr(blocking, "MIN_BLOCK_ELEMENTS", 100)
    assert cpu.row_blocks(30, 10) == [slice(0, 10), slice(10, 20), slice(20, 30)]
    assert cpu.row_blocks(40, 5) == [slice(0, 20), slice(20, 40)]  # a block: at least 20 rows of 5
    assert cpu.row_blocks(30, 5) == [slice(0, 30)]
    seen = []
    cpu.run_blocks(lambda rows: seen.append((rows.start, rows.stop)), 30, 10)
    assert sorted(seen) == [(0, 10), (10, 20), (20, 30)]


def test_cache_blocks_and_chunks_follow_the_byte_budgets(monkeypatch):
    monkeypatch.setattr(blocking, "CACHE_BLOCK_BYTES", 100)
    assert cpu.cache_blocks(slice(3, 12), 40) == [slice(3, 5), slice(5, 7), slice(7, 9), slice(9, 11),
                                                  slice(11, 12)]
    assert cpu.cache_blocks(slice(0, 4), 1000) == [slice(i, i + 1) for i in range(4)]  # at least a row
    monkeypatch.setattr(blocking, "CHUNK_BYTES", 1000)
    assert cpu.chunk_size(300) == 3 and cpu.chunk_size(5000) == 1 and cpu.chunk_size(300, budget=600) == 2


def test_one_module_holds_every_block_size():
    """The sizes that cut CPU work live in minitf.cpu.blocking only (one policy)."""
    import pathlib
    import re
    package = pathlib.Path(minitf.__file__).parent
    names = "|".join(["MIN_BLOCK_ELEMENTS", "MIN_PRODUCT_FLOPS", "CACHE_BLOCK_BYTES", "CHUNK_BYTES",
                      "BLOCK_BYTES", "MIN_ROWS_ELEMENTS"])
    defined = {str(path.relative_to(package)) for path in package.rglob("*.py")
               if re.search(rf"^({names}) *=", path.read_text(), re.M)}
    assert defined == {"cpu/blocking.py"}


def _product_in_a_child(queue):
    queue.put(cpu.matmul(np.ones((64, 8)), np.ones((8, 64))).sum())


def test_the_pool_works_in_a_forked_child(split_small):
    cpu.set_num_threads(2)
    cpu.run_tasks([lambda: None, lambda: None])  # the parent's pool has started
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_product_in_a_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and queue.get(timeout=5) == 64 * 64 * 8


# ---- products and column reductions --------------------------------------------------------------

PRODUCTS = [((9, 5), (5, 4)),        # rows
            ((3, 5), (5, 11)),       # columns
            ((6, 2, 3, 4), (6, 2, 4, 5)),  # batches
            ((6, 3, 4), (4, 2)),     # batches against one matrix
            ((6, 3, 4), (1, 4, 2)),  # ... broadcast from a size-1 batch
            ((2, 6, 3, 4), (6, 4, 2)),  # b with fewer batch axes
            ((1, 3, 4), (5, 4, 2)),  # a's batch of one: not split
            ((1, 9, 4), (1, 4, 5)), ((1, 1, 3, 11), (11, 6)),  # batches of one: 2-D products
            ((4,), (4, 3)), ((5, 4), (4,))]  # 1-D: as np.matmul


@pytest.mark.parametrize("a_shape, b_shape", PRODUCTS)
@pytest.mark.parametrize("threads", [2, 3])
def test_matmul_in_blocks_equals_numpy(split_small, a_shape, b_shape, threads):
    a, b = rand(*a_shape), rand(*b_shape, seed=1)
    cpu.set_num_threads(threads)
    np.testing.assert_allclose(cpu.matmul(a, b), np.matmul(a, b), rtol=1e-13, atol=1e-13)
    if len(a_shape) >= 2 and len(b_shape) >= 2:  # into a strided view of a larger array
        expected = np.matmul(a, b)
        out = np.zeros(expected.shape[:-1] + (2 * expected.shape[-1],))[..., ::2]
        assert cpu.matmul(a, b, out=out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13)


def test_matmul_epilogue_sees_each_block_of_rows_once(split_small):
    cpu.set_num_threads(3)
    a, b, bias = rand(10, 4), rand(4, 6, seed=1), rand(6, seed=2)
    seen = []

    def add_bias(out, rows):
        seen.append((rows.start, rows.stop))
        out[rows] += bias

    np.testing.assert_allclose(cpu.matmul(a, b, epilogue=add_bias), a @ b + bias, rtol=1e-13, atol=1e-13)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]
    with pytest.raises(ValueError, match="2-D operands"):
        cpu.matmul(rand(2, 3, 4), rand(4, 5), epilogue=add_bias)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sums_and_dots(split_small, dtype):
    cpu.set_num_threads(2)
    a, b = rand(37, 9).astype(dtype), rand(37, 9, seed=1).astype(dtype)
    sums, dots = cpu.column_sums(a), cpu.column_dots(a, b)
    assert sums.dtype == dots.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sums, a.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(dots, (a.astype(np.float64) * b).sum(axis=0), rtol=tol, atol=tol)


def test_the_first_call_runs_on_the_calling_thread(split_small):
    cpu.set_num_threads(2)
    here = threading.current_thread().name
    names = cpu.concurrently(lambda: threading.current_thread().name, lambda: threading.current_thread().name)
    assert names[0] == here and names[1].startswith("minitf-worker-")
    seen = {}
    g, x, w = rand(6, 4), rand(6, 3, seed=1), rand(4, 3, seed=2)

    def note(name):
        def epilogue(out, rows):
            seen[name] = threading.current_thread().name
        return epilogue

    for input_on_caller in (False, True):
        gx, gw, gb = cpu.linear_grads(g, x, w, bias_grad=True, scale=0.5, input_epilogue=note(input_on_caller),
                                      input_on_caller=input_on_caller)
        np.testing.assert_allclose(gx, g @ w, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(gw, 0.5 * g.T @ x, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(gb, g.sum(axis=0), rtol=1e-13, atol=1e-13)
    assert seen[True] == here and seen[False] != here


def test_for_each_balances_by_size_and_visits_every_item(split_small):
    cpu.set_num_threads(2)
    seen, lock = {}, threading.Lock()

    def visit(item):
        with lock:
            seen.setdefault(threading.current_thread().name, []).append(item)

    cpu.for_each(visit, ["big", "a", "b", "c"], [30, 10, 10, 10])
    assert sorted(sum(seen.values(), [])) == ["a", "b", "big", "c"]
    assert sorted(map(len, seen.values())) == [1, 3]


# ---- the fused ops: the same results on 1 and on 3 threads -----------------------------------------

def run_op(build, threads, seed=0):
    """(output, input gradients) of build() -> (output tensor, inputs), on `threads` threads."""
    cpu.set_num_threads(threads)
    minitf.manual_seed(seed)
    out, inputs = build()
    out.backward(tensor(rand(*out.shape, seed=7).astype(out.dtype), requires_grad=False))
    return out.numpy(), [t.grad for t in inputs]


def leaf(*shape, seed=0, dtype=np.float32):
    return tensor(rand(*shape, seed=seed).astype(dtype), requires_grad=True)


def layer_norm_case():
    x, w, b = leaf(7, 5, 6), leaf(6, seed=1), leaf(6, seed=2)
    return F.layer_norm(x, w, b), [x, w, b]


def layer_norm_without_affine_case():
    x = leaf(9, 4)
    return F.layer_norm(x), [x]


def feed_forward_case(activation):
    def build():
        x, w1, b1, w2, b2 = leaf(5, 3, 4), leaf(8, 4, seed=1), leaf(8, seed=2), leaf(4, 8, seed=3), leaf(4, seed=4)
        return F.feed_forward(x, w1, b1, w2, b2, activation, dropout_p=0.3, training=True), [x, w1, b1, w2, b2]
    return build


def attention_case(mask_shape):
    def build():
        q, k, v = leaf(4, 2, 5, 3), leaf(4, 2, 6, 3, seed=1), leaf(4, 2, 6, 3, seed=2)
        mask = np.random.default_rng(3).random(mask_shape) < 0.7 if mask_shape else None
        return F.scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=0.2), [q, k, v]
    return build


def cross_entropy_case():
    x = leaf(11, 7)
    targets = np.array([3, 0, 6, -100, 1, 2, 5, 4, 0, -100, 6])
    return F.cross_entropy(x, targets, label_smoothing=0.1, reduction="none"), [x]


def linear_and_dropout_case():
    x, w, b = leaf(6, 5), leaf(4, 5, seed=1), leaf(4, seed=2)
    return F.dropout(F.linear(x, w, b) @ leaf(4, 9, seed=3), 0.4), [x, w, b]


def conv2d_case(padding, groups):
    def build():
        x, w, b = leaf(5, 4, 7, 6), leaf(6, 4 // groups, 3, 3, seed=1), leaf(6, seed=2)
        return F.conv2d(x, w, b, padding=padding, groups=groups), [x, w, b]
    return build


def conv_transpose2d_case():
    x, w = leaf(3, 4, 5, 5), leaf(4, 2, 3, 3, seed=1)
    return F.conv_transpose2d(x, w, stride=2), [x, w]


CASES = {"conv2d": conv2d_case(0, 1), "conv2d_same_groups": conv2d_case("same", 2),
         "conv_transpose2d": conv_transpose2d_case,
         "layer_norm": layer_norm_case, "layer_norm_plain": layer_norm_without_affine_case,
         "feed_forward_relu": feed_forward_case("relu"), "feed_forward_gelu": feed_forward_case("gelu"),
         "attention": attention_case(None), "attention_per_batch_mask": attention_case((4, 1, 5, 6)),
         "attention_shared_mask": attention_case((5, 6)), "cross_entropy": cross_entropy_case,
         "linear_matmul_dropout": linear_and_dropout_case}


def assert_threads_agree_and_repeat(case):
    out1, grads1 = run_op(case, threads=1)
    out3, grads3 = run_op(case, threads=3)
    again3, again_grads3 = run_op(case, threads=3)
    np.testing.assert_allclose(out3, out1, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(again3, out3)
    for g3, g1, again in zip(grads3, grads1, again_grads3):
        np.testing.assert_allclose(g3, g1, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(again, g3)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_ops_agree_on_any_number_of_threads_and_repeat_exactly(split_small, name):
    assert_threads_agree_and_repeat(CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_ops_do_not_depend_on_which_thread_runs_which_task(split_small, monkeypatch, name):
    """The pool gives the calling thread the last task instead of the first: the same bits
    (placement only decides which thread's malloc arena holds a result)."""
    expected_out, expected_grads = run_op(CASES[name], threads=3)
    run = pool._Pool.run
    monkeypatch.setattr(pool._Pool, "run", lambda self, tasks: run(self, list(tasks)[::-1]))
    out, grads = run_op(CASES[name], threads=3)
    np.testing.assert_array_equal(out, expected_out)
    for g, expected in zip(grads, expected_grads):
        np.testing.assert_array_equal(g, expected)


@pytest.mark.parametrize("padding, groups", [(0, 1), ("same", 2)])
def test_conv2d_per_image_backward_agrees_on_any_number_of_threads(split_small, monkeypatch, padding, groups):
    """conv_grads (taken for images of many positions; here for any) in chunks of one image."""
    monkeypatch.setattr(F.conv, "MIN_IMAGE_POSITIONS", 1)
    assert_threads_agree_and_repeat(conv2d_case(padding, groups))


def test_adam_gives_the_same_update_on_any_number_of_threads(split_small):
    def train(threads):
        cpu.set_num_threads(threads)
        params = [leaf(*shape, seed=i) for i, shape in enumerate([(7, 5), (3,), (4, 4), (9,)])]
        opt = minitf.optim.AdamW(params, lr=0.1, weight_decay=0.01)
        for step in range(3):
            for i, p in enumerate(params):
                p.grad = rand(*p.shape, seed=10 * step + i).astype(np.float32)
            opt.step()
        return [p.numpy() for p in params]

    for after3, after1 in zip(train(3), train(1)):  # element-wise: exactly the same
        np.testing.assert_array_equal(after3, after1)


# ---- NumPy's BLAS: one thread while the pool splits products, at most n inside inference() ---------

def numpy_blas_threads():
    from threadpoolctl import threadpool_info
    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def rows_seen(n=64):
    """The blocks of rows in which cpu.matmul computes an (n, n) product."""
    seen = []
    cpu.matmul(np.ones((n, n)), np.ones((n, n)), epilogue=lambda out, rows: seen.append(rows))
    return sorted((s.start, s.stop) for s in seen)


def test_blas_runs_on_one_thread_with_the_pool_and_on_its_own_inside_inference(split_small, monkeypatch):
    from threadpoolctl import threadpool_limits

    cpu.set_num_threads(1)  # no pool
    with threadpool_limits(2, user_api="blas"):  # the suite runs BLAS on one thread (conftest)
        monkeypatch.setattr(pool, "_blas", None)  # found anew, with BLAS's two threads
        own = numpy_blas_threads()
        cpu.set_num_threads(2)
        cpu.run_tasks([lambda: None, lambda: None])
        assert set(numpy_blas_threads().values()) == {1}
        with cpu.inference():
            assert numpy_blas_threads() == own  # inference: products on BLAS's own threads, not split
            assert not cpu.splits_products() and rows_seen() == [(0, 64)]
            with cpu.inference():  # nested: still inference when the inner block ends
                pass
            assert numpy_blas_threads() == own
            cpu.run_tasks([lambda: None, lambda: None])
            assert numpy_blas_threads() == own  # given back after the pool's tasks
        assert set(numpy_blas_threads().values()) == {1}
        assert cpu.splits_products() and rows_seen() == [(0, 32), (32, 64)]
        cpu.set_num_threads(1)
        assert set(numpy_blas_threads().values()) == {1}  # one thread for all of minitf, BLAS too


def test_products_split_by_size_not_by_grad_mode(split_small, monkeypatch):
    """Validation under no_grad keeps its split products; only size and inference() decide."""
    cpu.set_num_threads(2)
    with minitf.no_grad():
        assert rows_seen() == [(0, 32), (32, 64)]
    monkeypatch.setattr(blocking, "MIN_PRODUCT_FLOPS", 64 ** 3 + 1)  # each half (64^3 FLOPs) too small
    assert rows_seen() == [(0, 64)]
    monkeypatch.setattr(blocking, "MIN_PRODUCT_FLOPS", 64 ** 3)
    assert rows_seen() == [(0, 32), (32, 64)]


def test_inference_gives_blas_back_when_its_block_raises(split_small):
    cpu.set_num_threads(2)
    with pytest.raises(KeyError):
        with cpu.inference():
            raise KeyError("decoding failed")
    assert cpu.splits_products()


@pytest.fixture
def blas_on_three_threads(monkeypatch):
    """NumPy's BLAS on three threads of its own (the suite runs it on one, conftest), found anew;
    minitf's thread count and BLAS restored afterwards."""
    from threadpoolctl import threadpool_limits

    before = cpu.get_num_threads()
    cpu.set_num_threads(1)  # no pool
    with threadpool_limits(3, user_api="blas"):
        monkeypatch.setattr(pool, "_blas", None)
        yield numpy_blas_threads()
        cpu.set_num_threads(1)
    monkeypatch.undo()  # minitf's BLAS record as it was, before the count comes back
    cpu.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_set_num_threads_caps_blas_in_grad_mode_and_inside_inference(blas_on_three_threads, threads):
    assert set(blas_on_three_threads.values()) == {3}
    cpu.set_num_threads(threads)
    assert max(numpy_blas_threads().values()) <= threads
    x = minitf.tensor(rand(64, 32), requires_grad=True)
    F.linear(x, minitf.tensor(rand(16, 32)))
    assert max(numpy_blas_threads().values()) <= threads
    with cpu.inference(), minitf.no_grad():
        F.linear(x, minitf.tensor(rand(16, 32)))
        cpu.run_tasks([lambda: None, lambda: None])
        assert max(numpy_blas_threads().values()) <= threads
    assert max(numpy_blas_threads().values()) <= threads


def test_minitf_num_threads_in_the_environment_caps_blas_from_import():
    import os
    import subprocess
    import sys
    code = ("import minitf, threadpoolctl; print(max(lib['num_threads'] for lib in "
            "threadpoolctl.threadpool_info() if lib['user_api'] == 'blas'))")
    env = dict(os.environ, MINITF_NUM_THREADS="1", OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
