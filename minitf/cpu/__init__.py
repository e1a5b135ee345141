"""minitf's CPU work as a service: the thread pool (`pool`), one blocking policy (`blocking`),
matrix products with epilogues (`gemm`), the thread count's rule (`threads`) and host memory
(`memory`). A fused op writes its math as a per-block function and hands it to one primitive:
`run_blocks(fn, rows, row_size)` for row-wise passes, `matmul(a, b, epilogue=fn)` for a product
followed by a pass over its rows, `concurrently(...)` for independent products.
"""
from .blocking import blocks, cache_blocks, chunk_size, for_each, on_cpu, row_blocks, run_blocks
from .gemm import column_dots, column_sums, linear_grads, matmul, scaled
from .memory import retain_freed_memory
from .pool import concurrently, get_num_threads, inference, run_tasks, set_num_threads, splits_products
from .threads import max_threads

__all__ = ["get_num_threads", "set_num_threads", "max_threads", "inference", "splits_products", "run_tasks",
           "concurrently", "blocks", "row_blocks", "run_blocks", "for_each", "cache_blocks", "chunk_size", "on_cpu",
           "matmul", "linear_grads", "scaled", "column_sums", "column_dots", "retain_freed_memory"]
