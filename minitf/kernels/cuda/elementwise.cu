// Module "elementwise": GELU and dropout (launched by minitf/kernels/ops.py).
// Compiled after common.cuh (see there); MINITF_SQRT_2_OVER_PI, MINITF_GELU_C, ... are
// the constants of minitf/kernels/constants.py, which the NumPy path uses too.

#define MINITF_GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// ---- gelu: approximate = 0 ("none", erf) or 1 ("tanh") ------------------------------
template <typename T>
__global__ void gelu_fwd(const T* __restrict__ x, T* __restrict__ y, long long n, int tanh_mode) {
    MINITF_GRID_STRIDE(i, n) {
        const T v = x[i];
        if (tanh_mode) {
            const T th = k_tanh(T(MINITF_SQRT_2_OVER_PI) * (v + T(MINITF_GELU_C) * (v * v * v)));
            y[i] = T(0.5) * v * (T(1) + th);
        } else {
            y[i] = v * (T(0.5) * (T(1) + k_erf(v * T(MINITF_INV_SQRT_2))));
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
            const T th = k_tanh(T(MINITF_SQRT_2_OVER_PI) * (v + T(MINITF_GELU_C) * (v * v * v)));
            const T d_inner = T(MINITF_SQRT_2_OVER_PI) * (T(1) + T(MINITF_GELU_3C) * v * v);
            d = T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * d_inner;
        } else {
            const T cdf = T(0.5) * (T(1) + k_erf(v * T(MINITF_INV_SQRT_2)));
            const T pdf = k_exp(T(-0.5) * v * v) * T(MINITF_INV_SQRT_2PI);
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
