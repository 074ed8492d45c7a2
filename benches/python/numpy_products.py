"""The seven matrix products of one 2-layer relative-gradient evaluation, in NumPy (f32).

The same products that ``relgrad bench`` times as its floor (``4L - 1 = 7`` for
``L = 2``, ``B <= D``): the forward ``X W1`` and ``Y1 W2``, the backward ``Delta2 W2^T``,
and per layer ``W Y^T`` then ``(W Y^T) Delta``, into preallocated arrays, through NumPy's
own BLAS (the OpenBLAS its wheels bundle): each product timed alone and the times added
(as relgrad bench's floor column), and the seven in sequence. Medians of 7 rounds.

    python benches/python/numpy_products.py 256,512,1024

Run it next to ``relgrad bench --precision f32 --dims 256,512,1024`` (see
docs/benchmarks.md); the numbers are only comparable within one session.
"""
import sys, time, numpy as np
B = 100
rng = np.random.default_rng(0)
for D in map(int, sys.argv[1].split(",")):
    X = rng.standard_normal((B, D)).astype(np.float32)
    W1 = rng.standard_normal((D, D)).astype(np.float32) / np.sqrt(D)
    W2 = rng.standard_normal((D, D)).astype(np.float32) / np.sqrt(D)
    Y1 = np.empty((B, D), np.float32); Z = np.empty((B, D), np.float32); D1 = np.empty((B, D), np.float32)
    P1 = np.empty((D, B), np.float32); P2 = np.empty((D, B), np.float32)
    R1 = np.empty((D, D), np.float32); R2 = np.empty((D, D), np.float32)
    products = [
        lambda: np.matmul(X, W1, out=Y1),  # forward, layer 1
        lambda: np.matmul(Y1, W2, out=Z),  # forward, layer 2
        lambda: np.matmul(Z, W2.T, out=D1),  # backward: Delta_2 W_2^T
        lambda: np.matmul(W1, Y1.T, out=P1),  # W Y^T, layer 1
        lambda: np.matmul(P1, D1, out=R1),  # (W Y^T) Delta, layer 1
        lambda: np.matmul(W2, Z.T, out=P2),  # layer 2
        lambda: np.matmul(P2, Z, out=R2),
    ]

    def step():
        for p in products:
            p()

    def median_ms(f, n):
        for _ in range(max(3, n // 10)):
            f()
        times = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(n):
                f()
            times.append((time.perf_counter() - t) / n)
        return sorted(times)[3] * 1e3

    n = max(20, int(2e9 / (7 * 2 * B * D * D)))
    # As relgrad bench's floor: each product timed alone, the times added.
    alone = sum(median_ms(p, n) for p in products)
    # The seven one after another, as a step runs them.
    together = median_ms(step, n)
    print(f"numpy D={D} B={B}: seven products timed alone {alone:.3f} ms, in sequence {together:.3f} ms")
blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
print(f"numpy {np.__version__}, BLAS {blas['name']} {blas.get('version', '')}")
