//! Test-oracle shim: calls one of libggml's `vec_dot` function pointers over
//! many rows in a native loop, so the oracle (and the benchmark) does not pay
//! a Deno function-pointer call per row. Built on first use by ggml.ts.
const VecDot = *const fn (n: c_int, s: *f32, bs: usize, x: *const anyopaque, bx: usize, y: *const anyopaque, by: usize, nrc: c_int) callconv(.C) void;

/// y[r] = vec_dot(n, w + r*row_bytes, a) for r in [0, rows).
export fn oracle_vec_dot_rows(vec_dot: VecDot, n: c_int, w: [*]const u8, row_bytes: usize, rows: usize, a: *const anyopaque, y: [*]f32) void {
    for (0..rows) |r| vec_dot(n, &y[r], 0, w + r * row_bytes, 0, a, 0, 1);
}
