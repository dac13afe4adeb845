// Device helpers shared by every scratchae kernel. The sources are compiled once per
// floating type with -Dsae_t=float or -Dsae_t=double and with --fmad=false, so each
// kernel performs the reference expression's IEEE operations in the reference's order
// (CuPy also passes -ftz=true: float32 subnormal inputs and results are flushed to 0).
#ifndef SAE_COMMON_CU
#define SAE_COMMON_CU

// Activation codes: the same numbers as scratchae.kernels.args.ACTIVATION_CODES.
enum SaeActivation {
    ACT_IDENTITY = 0,
    ACT_RELU = 1,
    ACT_LEAKY_RELU = 2,
    ACT_ELU = 3,
    ACT_SIGMOID = 4,
    ACT_TANH = 5,
    ACT_SOFTPLUS = 6
};

// Threads per block of the elementwise and reduction kernels (a power of two).
#define SAE_BLOCK 256

// Grid-stride loop over the flat index i in [0, size).
#define SAE_GRID_LOOP(i, size) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (size); \
         i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float sae_exp(float x) { return expf(x); }
__device__ __forceinline__ double sae_exp(double x) { return exp(x); }
__device__ __forceinline__ float sae_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double sae_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float sae_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double sae_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float sae_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double sae_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float sae_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double sae_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float sae_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double sae_abs(double x) { return fabs(x); }

// sigmoid(x) given e = exp(-|x|), which never overflows.
__device__ __forceinline__ sae_t sae_sigmoid(sae_t x, sae_t e) {
    const sae_t one = 1;
    return x >= 0 ? one / (one + e) : e / (one + e);
}

// y = f(x); p is the slope of leaky_relu or the alpha of elu.
__device__ __forceinline__ sae_t sae_act_forward(sae_t x, int code, sae_t p) {
    const sae_t zero = 0;
    switch (code) {
        case ACT_RELU: return x < zero ? zero : x;
        case ACT_LEAKY_RELU: return x > zero ? x : x * p;
        case ACT_ELU: return x > zero ? x : sae_expm1(x) * p;  // x <= 0 or NaN here: NaN stays NaN
        case ACT_SIGMOID: return sae_sigmoid(x, sae_exp(-sae_abs(x)));
        case ACT_TANH: return sae_tanh(x);
        case ACT_SOFTPLUS: return (x > zero ? x : zero) + sae_log1p(sae_exp(-sae_abs(x)));
        default: return x;
    }
}

// gy * f'(x), written from the output y = f(x).
__device__ __forceinline__ sae_t sae_act_grad(sae_t gy, sae_t y, int code, sae_t p) {
    const sae_t zero = 0, one = 1;
    switch (code) {
        case ACT_RELU: return gy * (y > zero ? one : zero);
        case ACT_LEAKY_RELU: return y > zero ? gy : gy * p;
        case ACT_ELU: return y > zero ? gy : gy * (y + p);
        case ACT_SIGMOID: return gy * y * (one - y);
        case ACT_TANH: return gy * (one - y * y);
        case ACT_SOFTPLUS: return gy * -sae_expm1(-y);
        default: return gy;
    }
}

// The sum of v over a block of SAE_BLOCK threads, in a fixed order (deterministic).
__device__ double sae_block_sum(double v) {
    __shared__ double part[SAE_BLOCK];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int k = SAE_BLOCK / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    return part[0];
}

// out[0] <- the sum of partials[0:count] (one block of SAE_BLOCK threads): ends a reduction.
extern "C" __global__ void sum_partials(const double* partials, int count, sae_t* out) {
    double acc = 0;
    for (int i = threadIdx.x; i < count; i += SAE_BLOCK) acc += partials[i];
    double total = sae_block_sum(acc);
    if (threadIdx.x == 0) out[0] = (sae_t)total;
}

#endif  // SAE_COMMON_CU
