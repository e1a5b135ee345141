"""CUDA C source of the fused kernels, as plain strings (no CuPy needed to read them).

Every kernel is a function template over the element type T (float or double),
instantiated through `cupy.RawModule(name_expressions=[...])` at run time, and by
explicit instantiation in tests/test_kernels.py, which compiles every source here with
nvcc. The sources use no #include, so they compile with NVRTC (CuPy's default) as well.

Conventions shared by all kernels:
  * arrays are C-contiguous; "rows" kernels treat x as (rows, cols) with one block per row
    (blockDim.x a multiple of 32, at most 1024), reducing with warp shuffles and a
    32-slot shared buffer;
  * elementwise kernels use a grid-stride loop over n elements;
  * sizes and offsets are `long long`, so arrays of more than 2**31 elements work;
  * scalar hyperparameters arrive already converted to T (as NumPy does with Python floats).
"""
from __future__ import annotations

import math

__all__ = ["COMMON", "SOURCES", "TEMPLATES", "module_source"]

# Constants as the NumPy path spells them (minitf/functional/activations.py); repr() round-trips.
_SQRT_2_OVER_PI = repr(math.sqrt(2.0 / math.pi))
_INV_SQRT_2 = repr(1.0 / math.sqrt(2.0))
_INV_SQRT_2PI = repr(1.0 / math.sqrt(2.0 * math.pi))
_GELU_C = repr(0.044715)
_GELU_3C = repr(3 * 0.044715)

COMMON = r"""
// ---- math overloads: one spelling for float and double --------------------------
__device__ __forceinline__ float k_exp(float v) { return expf(v); }
__device__ __forceinline__ double k_exp(double v) { return exp(v); }
__device__ __forceinline__ float k_log(float v) { return logf(v); }
__device__ __forceinline__ double k_log(double v) { return log(v); }
__device__ __forceinline__ float k_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double k_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float k_erf(float v) { return erff(v); }
__device__ __forceinline__ double k_erf(double v) { return erf(v); }
__device__ __forceinline__ float k_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double k_tanh(double v) { return tanh(v); }
// -inf and a quiet NaN without <math.h> (NVRTC has no INFINITY macro).
__device__ __forceinline__ float k_neg_inf(float) { return -__int_as_float(0x7f800000); }
__device__ __forceinline__ double k_neg_inf(double) { return -__longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ float k_nan(float) { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ double k_nan(double) { return __longlong_as_double(0x7fffffffffffffffLL); }

// finite <=> v - v == 0 (inf - inf and NaN - NaN are NaN); exact without fast-math.
template <typename T>
__device__ __forceinline__ bool k_isfinite(T v) { return v - v == T(0); }

// max that propagates NaN, as numpy.max does.
template <typename T>
__device__ __forceinline__ T k_max(T a, T b) { return (a > b || a != a) ? a : b; }

// ---- warp and block reductions (blockDim.x must be a multiple of 32) ---------------
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = k_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. sbuf: 32 shared slots.
template <typename T>
__device__ T block_sum(T v, T* sbuf) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // the previous reduction's readers are done with sbuf
    if (lane == 0) sbuf[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nwarps ? sbuf[lane] : T(0);
        v = warp_sum(v);
        if (lane == 0) sbuf[0] = v;
    }
    __syncthreads();
    return sbuf[0];
}

// Max over the block; every thread gets the result. sbuf: 32 shared slots.
template <typename T>
__device__ T block_max(T v, T* sbuf) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sbuf[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nwarps ? sbuf[lane] : k_neg_inf(T(0));
        v = warp_max(v);
        if (lane == 0) sbuf[0] = v;
    }
    __syncthreads();
    return sbuf[0];
}
"""

ROWWISE = r"""
// ---- softmax over the last axis: x, y (rows, cols); grid = rows ---------------------
template <typename T>
__global__ void softmax_fwd(const T* __restrict__ x, T* __restrict__ y, long long cols) {
    __shared__ T sbuf[32];
    const T* xr = x + (long long)blockIdx.x * cols;
    T* yr = y + (long long)blockIdx.x * cols;
    T m = k_neg_inf(T(0));
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) m = k_max(m, xr[j]);
    m = block_max(m, sbuf);
    T s = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        T e = k_exp(xr[j] - m);
        yr[j] = e;
        s += e;
    }
    s = block_sum(s, sbuf);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = yr[j] / s;
}

// gx = y * (g - sum(g * y)) per row.
template <typename T>
__global__ void softmax_bwd(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ gx,
                            long long cols) {
    __shared__ T sbuf[32];
    const long long off = (long long)blockIdx.x * cols;
    T s = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += g[off + j] * y[off + j];
    s = block_sum(s, sbuf);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) gx[off + j] = y[off + j] * (g[off + j] - s);
}

// Row max, replaced by 0 when it is not finite (as logsumexp_array does).
template <typename T>
__device__ T row_shift(const T* xr, long long cols, T* sbuf) {
    T m = k_neg_inf(T(0));
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) m = k_max(m, xr[j]);
    m = block_max(m, sbuf);
    return k_isfinite(m) ? m : T(0);
}

// y = x - logsumexp(x) per row.
template <typename T>
__global__ void log_softmax_fwd(const T* __restrict__ x, T* __restrict__ y, long long cols) {
    __shared__ T sbuf[32];
    const T* xr = x + (long long)blockIdx.x * cols;
    T* yr = y + (long long)blockIdx.x * cols;
    const T m = row_shift(xr, cols, sbuf);
    T s = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += k_exp(xr[j] - m);
    s = block_sum(s, sbuf);
    const T lse = m + k_log(s);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = xr[j] - lse;
}

// gx = g - exp(y) * sum(g) per row.
template <typename T>
__global__ void log_softmax_bwd(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ gx,
                                long long cols) {
    __shared__ T sbuf[32];
    const long long off = (long long)blockIdx.x * cols;
    T s = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += g[off + j];
    s = block_sum(s, sbuf);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) gx[off + j] = g[off + j] - k_exp(y[off + j]) * s;
}

// ---- cross-entropy: x (rows, cols) logits, t (rows,) int64 --------------------------
// loss[r] = lse - (1-s) x[t] - s mean(x); 0 where t == ignore_index; NaN for a target
// outside [0, cols) (callers validate targets first). lse[r] is written for every row.
template <typename T>
__global__ void cross_entropy_fwd(const T* __restrict__ x, const long long* __restrict__ t,
                                  T* __restrict__ loss, T* __restrict__ lse_out, long long cols,
                                  long long ignore_index, T smoothing, T one_minus_s) {
    __shared__ T sbuf[32];
    const long long row = blockIdx.x;
    const T* xr = x + row * cols;
    const T m = row_shift(xr, cols, sbuf);
    T s = T(0), sx = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        const T v = xr[j];
        s += k_exp(v - m);
        sx += v;
    }
    s = block_sum(s, sbuf);
    if (smoothing != T(0)) sx = block_sum(sx, sbuf);  // uniform branch: smoothing is a kernel argument
    if (threadIdx.x == 0) {
        const T lse = m + k_log(s);
        lse_out[row] = lse;
        const long long tt = t[row];
        T l;
        if (tt == ignore_index) {
            l = T(0);
        } else if (tt < 0 || tt >= cols) {
            l = k_nan(T(0));
        } else {
            l = lse - one_minus_s * xr[tt];
            if (smoothing != T(0)) l -= smoothing * (sx / T(cols));
        }
        loss[row] = l;
    }
}

// gx = (softmax(x) - q) * scale[r * scale_stride], q = (1-s) onehot(t) + s/C; 0 on ignored rows.
// Elementwise over rows * cols (grid-stride). scale_stride is 1 (per-row array) or 0 (one scalar).
template <typename T>
__global__ void cross_entropy_bwd(const T* __restrict__ x, const long long* __restrict__ t,
                                  const T* __restrict__ lse, const T* __restrict__ scale,
                                  long long scale_stride, T* __restrict__ gx, long long n, long long cols,
                                  long long ignore_index, T one_minus_s, T s_over_c) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const long long r = i / cols;
        const long long j = i - r * cols;
        const long long tt = t[r];
        T out = T(0);
        if (tt != ignore_index) {
            out = k_exp(x[i] - lse[r]);
            if (s_over_c != T(0)) out -= s_over_c;
            if (j == tt) out -= one_minus_s;
            out *= scale[r * scale_stride];
        }
        gx[i] = out;
    }
}

// ---- layer norm over the last axis: x, y (rows, cols); w, b (cols,) -----------------
// y = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps), biased variance (two passes).
template <typename T>
__global__ void layer_norm_fwd(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                               T* __restrict__ y, T* __restrict__ mean_out, T* __restrict__ rstd_out,
                               long long cols, T eps, int has_w, int has_b) {
    __shared__ T sbuf[32];
    const long long row = blockIdx.x;
    const T* xr = x + row * cols;
    T* yr = y + row * cols;
    T s = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += xr[j];
    const T mu = block_sum(s, sbuf) / T(cols);
    T q = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        const T d = xr[j] - mu;
        q += d * d;
    }
    const T var = block_sum(q, sbuf) / T(cols);
    const T rstd = T(1) / k_sqrt(var + eps);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        T v = (xr[j] - mu) * rstd;
        if (has_w) v *= w[j];
        if (has_b) v += b[j];
        yr[j] = v;
    }
    if (threadIdx.x == 0) {
        mean_out[row] = mu;
        rstd_out[row] = rstd;
    }
}

// gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * w, xhat = (x - mean) * rstd.
template <typename T>
__global__ void layer_norm_bwd(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ w,
                               const T* __restrict__ mean, const T* __restrict__ rstd, T* __restrict__ gx,
                               long long cols, int has_w) {
    __shared__ T sbuf[32];
    const long long row = blockIdx.x;
    const long long off = row * cols;
    const T mu = mean[row], r = rstd[row];
    T s1 = T(0), s2 = T(0);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        const T gh = has_w ? g[off + j] * w[j] : g[off + j];
        s1 += gh;
        s2 += gh * ((x[off + j] - mu) * r);
    }
    const T m1 = block_sum(s1, sbuf) / T(cols);
    const T m2 = block_sum(s2, sbuf) / T(cols);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        const T gh = has_w ? g[off + j] * w[j] : g[off + j];
        const T xh = (x[off + j] - mu) * r;
        gx[off + j] = r * (gh - m1 - xh * m2);
    }
}

// Partial column sums for the weight and bias gradients. block = (32, 8); grid.x covers
// the columns 32 at a time, grid.y splits the rows. Writes part_w/part_b[blockIdx.y, col]
// (shape (gridDim.y, cols)); the caller sums them over axis 0. Deterministic.
template <typename T>
__global__ void layer_norm_bwd_params(const T* __restrict__ x, const T* __restrict__ g,
                                      const T* __restrict__ mean, const T* __restrict__ rstd,
                                      T* __restrict__ part_w, T* __restrict__ part_b, long long rows,
                                      long long cols, int want_w, int want_b) {
    __shared__ T sw[8][33];
    __shared__ T sb[8][33];
    const long long c = (long long)blockIdx.x * 32 + threadIdx.x;
    T aw = T(0), ab = T(0);
    if (c < cols) {
        for (long long r = (long long)blockIdx.y * 8 + threadIdx.y; r < rows; r += (long long)gridDim.y * 8) {
            const T gv = g[r * cols + c];
            ab += gv;
            if (want_w) aw += gv * ((x[r * cols + c] - mean[r]) * rstd[r]);
        }
    }
    sw[threadIdx.y][threadIdx.x] = aw;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        T tw = T(0), tb = T(0);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            tw += sw[k][threadIdx.x];
            tb += sb[k][threadIdx.x];
        }
        if (want_w) part_w[(long long)blockIdx.y * cols + c] = tw;
        if (want_b) part_b[(long long)blockIdx.y * cols + c] = tb;
    }
}
"""

ELEMENTWISE = r"""
#define MINITF_GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// ---- gelu: approximate = 0 ("none", erf) or 1 ("tanh") ------------------------------
template <typename T>
__global__ void gelu_fwd(const T* __restrict__ x, T* __restrict__ y, long long n, int tanh_mode) {
    MINITF_GRID_STRIDE(i, n) {
        const T v = x[i];
        if (tanh_mode) {
            const T th = k_tanh(T(@SQRT_2_OVER_PI@) * (v + T(@GELU_C@) * (v * v * v)));
            y[i] = T(0.5) * v * (T(1) + th);
        } else {
            y[i] = v * (T(0.5) * (T(1) + k_erf(v * T(@INV_SQRT_2@))));
        }
    }
}

template <typename T>
__global__ void gelu_bwd(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ gx, long long n,
                         int tanh_mode) {
    MINITF_GRID_STRIDE(i, n) {
        const T v = x[i];
        T d;
        if (tanh_mode) {
            const T th = k_tanh(T(@SQRT_2_OVER_PI@) * (v + T(@GELU_C@) * (v * v * v)));
            const T d_inner = T(@SQRT_2_OVER_PI@) * (T(1) + T(@GELU_3C@) * v * v);
            d = T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * d_inner;
        } else {
            const T cdf = T(0.5) * (T(1) + k_erf(v * T(@INV_SQRT_2@)));
            const T pdf = k_exp(T(-0.5) * v * v) * T(@INV_SQRT_2PI@);
            d = cdf + v * pdf;
        }
        gx[i] = g[i] * d;
    }
}

// ---- dropout: u uniform [0, 1); mask = (u >= p) * scale; y = x * mask -----------------
template <typename T>
__global__ void dropout_fwd(const T* __restrict__ x, const T* __restrict__ u, T* __restrict__ y,
                            T* __restrict__ mask, long long n, T p, T scale) {
    MINITF_GRID_STRIDE(i, n) {
        const T mk = u[i] >= p ? scale : T(0);
        mask[i] = mk;
        y[i] = x[i] * mk;
    }
}
""".replace("@SQRT_2_OVER_PI@", _SQRT_2_OVER_PI).replace("@GELU_C@", _GELU_C) \
   .replace("@GELU_3C@", _GELU_3C).replace("@INV_SQRT_2@", _INV_SQRT_2) \
   .replace("@INV_SQRT_2PI@", _INV_SQRT_2PI)

ADAM = r"""
// ---- Adam / AdamW, in place. mode: 0 no weight decay, 1 L2 (Adam), 2 decoupled (AdamW).
// Same operation order as minitf/optim/adam.py:
//   p *= decay (mode 2) | g += wd * p (mode 1)
//   m = m * b1 + g * (1 - b1);  v = v * b2 + (g * g) * (1 - b2)
//   p -= (m / (sqrt(v) * inv_bias2 + eps)) * step_size
template <typename T>
__device__ __forceinline__ void adam_elem(T* p, const T* g, T* m, T* v, long long i, T b1, T omb1, T b2,
                                          T omb2, T eps, T step_size, T inv_bias2, T wd, T decay, int mode) {
    T pi = p[i];
    T gi = g[i];
    if (mode == 2) pi = pi * decay;
    else if (mode == 1) gi = gi + wd * pi;
    const T mi = m[i] * b1 + gi * omb1;
    const T vi = v[i] * b2 + (gi * gi) * omb2;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - (mi / (k_sqrt(vi) * inv_bias2 + eps)) * step_size;
}

template <typename T>
__global__ void adam_step(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                          long long n, T b1, T omb1, T b2, T omb2, T eps, T step_size, T inv_bias2, T wd,
                          T decay, int mode) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        adam_elem(p, g, m, v, i, b1, omb1, b2, omb2, eps, step_size, inv_bias2, wd, decay, mode);
}

// Multi-tensor Adam: one launch for many parameters of one dtype. `table` (int64) holds
//   [0, 4*n_tensors):              device addresses p_k, g_k, m_k, v_k of tensor k at 4k..4k+3
//   [4*n_tensors, 5*n_tensors):    element counts of the tensors
//   then 2 entries per chunk:      (tensor index, first element of the chunk)
// Block b updates chunk b: elements [start, min(start + chunk_size, size)) of its tensor.
template <typename T>
__global__ void adam_step_multi(const long long* __restrict__ table, long long n_tensors,
                                long long chunk_size, T b1, T omb1, T b2, T omb2, T eps, T step_size,
                                T inv_bias2, T wd, T decay, int mode) {
    const long long* sizes = table + 4 * n_tensors;
    const long long* chunks = sizes + n_tensors;
    const long long k = chunks[2 * (long long)blockIdx.x];
    const long long start = chunks[2 * (long long)blockIdx.x + 1];
    long long end = start + chunk_size;
    if (end > sizes[k]) end = sizes[k];
    T* p = reinterpret_cast<T*>(table[4 * k]);
    const T* g = reinterpret_cast<const T*>(table[4 * k + 1]);
    T* m = reinterpret_cast<T*>(table[4 * k + 2]);
    T* v = reinterpret_cast<T*>(table[4 * k + 3]);
    for (long long i = start + threadIdx.x; i < end; i += blockDim.x)
        adam_elem(p, g, m, v, i, b1, omb1, b2, omb2, eps, step_size, inv_bias2, wd, decay, mode);
}
"""

# module name -> CUDA source (without COMMON); each module is compiled once per dtype.
SOURCES: dict[str, str] = {"rowwise": ROWWISE, "elementwise": ELEMENTWISE, "adam": ADAM}

# module name -> the kernel templates it defines (each instantiated as name<float>, name<double>).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "rowwise": ("softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd", "cross_entropy_fwd",
                "cross_entropy_bwd", "layer_norm_fwd", "layer_norm_bwd", "layer_norm_bwd_params"),
    "elementwise": ("gelu_fwd", "gelu_bwd", "dropout_fwd"),
    "adam": ("adam_step", "adam_step_multi"),
}

CTYPES = {"float32": "float", "float64": "double"}


def module_source(name: str) -> str:
    """The full translation unit of module `name`: COMMON followed by the module's kernels."""
    return COMMON + SOURCES[name]
