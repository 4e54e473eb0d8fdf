"""Fit the division-free float32 log polynomial used by the Gumbel kernels.

log(1 + f) = f - f^2/2 + f^3 P(f) on f in [sqrt(1/2) - 1, sqrt(2) - 1], P of
degree d fitted for minimal relative error of log(1 + f) by Lawson's algorithm
(mpmath, 40 digits). Prints the float32-rounded coefficients and their error.

    python tools/fit_log.py
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
LO, HI = mp.sqrt(0.5) - 1, mp.sqrt(2) - 1


def fit(degree, points=200, iters=60):
    fs = [(LO + HI) / 2 + (HI - LO) / 2 * mp.cos(mp.pi * (j + mp.mpf(1) / 2) / points) for j in range(points)]
    w = [mp.mpf(1) / points] * points
    for _ in range(iters):
        a, y = mp.matrix(points, degree + 1), mp.matrix(points, 1)
        for i, f in enumerate(fs):
            sw, target = mp.sqrt(w[i]), mp.log1p(f)
            for k in range(degree + 1):
                a[i, k] = sw * f ** (k + 3) / target
            y[i] = sw * (target - f + f * f / 2) / target
        sol, _ = mp.qr_solve(a, y)
        c = [sol[k] for k in range(degree + 1)]
        errs = [abs(f - f * f / 2 + sum(ck * f ** (k + 3) for k, ck in enumerate(c)) - mp.log1p(f)) / abs(mp.log1p(f)) for f in fs]
        total = sum(wi * e for wi, e in zip(w, errs))
        w = [wi * e / total for wi, e in zip(w, errs)]
    return c


def max_error(c):
    worst = 0
    for j in range(1, 20000):
        f = LO + (HI - LO) * j / 20000
        if abs(f) < 1e-12:
            continue
        p = f - f * f / 2 + sum(mp.mpf(ck) * f ** (k + 3) for k, ck in enumerate(c))
        worst = max(worst, abs(p - mp.log1p(f)) / abs(mp.log1p(f)))
    return worst


if __name__ == "__main__":
    for degree in (5, 6, 7):
        c = [float(np.float32(float(v))) for v in fit(degree)]
        print(f"degree {degree}: max relative error {mp.nstr(max_error(c), 4)}")
        print("  " + ", ".join(float(v).hex() for v in c))
