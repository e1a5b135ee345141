// Module "rowwise": softmax, log-softmax, cross-entropy and layer norm over the last axis
// (launched by minitf/kernels/ops.py). Compiled after common.cuh (see there).

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
