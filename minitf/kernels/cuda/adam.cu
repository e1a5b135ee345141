// Module "adam": Adam and AdamW updates (launched by minitf/kernels/adam.py).
// Compiled after common.cuh (see there).

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
