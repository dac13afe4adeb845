// The VAE's Gaussian KL term and reparameterization.
#include "common.cu"

// dlogvar <- 0.5 (exp(logvar) - 1); partials[block] <- sum of 0.5 (mu^2 + exp(logvar) - logvar - 1).
// Launch with blocks of SAE_BLOCK threads; sum_partials adds the partials.
extern "C" __global__ void gaussian_kl(const sae_t* mu, const sae_t* logvar, sae_t* dlogvar, double* partials,
                                       long long size) {
    const sae_t one = 1, half = 0.5;
    double acc = 0;
    SAE_GRID_LOOP(i, size) {
        const sae_t m = mu[i], lv = logvar[i], var = sae_exp(lv);
        acc += half * (m * m + var - lv - one);
        dlogvar[i] = half * (var - one);
    }
    const double total = sae_block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// std <- exp(0.5 logvar); z <- mu + std eps.
extern "C" __global__ void reparameterize_forward(const sae_t* mu, const sae_t* logvar, const sae_t* eps, sae_t* z,
                                                  sae_t* std, long long size) {
    const sae_t half = 0.5;
    SAE_GRID_LOOP(i, size) {
        const sae_t s = sae_exp(half * logvar[i]);
        std[i] = s;
        z[i] = mu[i] + s * eps[i];
    }
}

// geps <- gz std; glogvar <- 0.5 gz std eps.
extern "C" __global__ void reparameterize_backward(const sae_t* gz, const sae_t* std, const sae_t* eps,
                                                   sae_t* glogvar, sae_t* geps, long long size) {
    const sae_t half = 0.5;
    SAE_GRID_LOOP(i, size) {
        const sae_t g_std = gz[i] * std[i];
        geps[i] = g_std;
        glogvar[i] = half * g_std * eps[i];
    }
}
