//! Element-wise activations as GGML computes them in f32: SwiGLU
//! (ggml_swiglu: silu(g)·u with silu(x) = x / (1 + e^-x)) and the row softmax
//! of ggml_soft_max_ext without mask (x·scale, minus the row max, e^v rounded
//! to f32 (computed in f64: GGML's expf is within an ulp of it) summed in f64,
//! times the f32 reciprocal of the sum).
const std = @import("std");
const status = @import("../c_api/status.zig");

const Error = status.Error;

inline fn silu(x: f32) f32 {
    return x / (1.0 + @exp(-x));
}

/// `out[i] = silu(g[i]) * u[i]`; `out` may be `g` or `u`.
pub fn swiglu(g: []const f32, u: []const f32, out: []f32) Error!void {
    if (u.len != g.len) return status.fail(error.LengthMismatch, "swiglu: u has {d} elements, expected {d} as g", .{ u.len, g.len });
    if (out.len != g.len) return status.fail(error.LengthMismatch, "swiglu: out has {d} elements, expected {d} as g", .{ out.len, g.len });
    for (g, u, out) |a, b, *o| o.* = silu(a) * b;
}

/// One row: `x = softmax(x · scale)` in place.
pub fn softmaxRow(x: []f32, scale: f32) void {
    var max = -std.math.inf(f32);
    for (x) |*v| {
        v.* *= scale;
        max = @max(max, v.*);
    }
    var sum: f64 = 0;
    for (x) |*v| {
        v.* = @floatCast(@exp(@as(f64, v.* - max)));
        sum += v.*;
    }
    const inv: f32 = @floatCast(1.0 / sum);
    for (x) |*v| v.* *= inv;
}

/// Every row of `n` elements of `x`: `softmax(row · scale)`, in place.
pub fn softmax(x: []f32, n: usize, scale: f32) Error!void {
    if (n == 0) return status.fail(error.InvalidArgument, "softmax: row length n must be positive", .{});
    if (x.len % n != 0) return status.fail(error.LengthMismatch, "softmax: x has {d} elements, not a multiple of the row length {d}", .{ x.len, n });
    if (!std.math.isFinite(scale)) return status.fail(error.InvalidArgument, "softmax: scale is {d}", .{scale});
    var r: usize = 0;
    while (r < x.len) : (r += n) softmaxRow(x[r..][0..n], scale);
}

test "swiglu and softmax: close to f64 references, shape errors" {
    var g: [37]f32 = undefined;
    var u: [37]f32 = undefined;
    @import("qdot.zig").testing.fill(&g, 1);
    @import("qdot.zig").testing.fill(&u, 2);
    var y: [37]f32 = undefined;
    try swiglu(&g, &u, &y);
    for (g, u, y) |a, b, got| {
        const want = @as(f64, a) / (1 + @exp(-@as(f64, a))) * b;
        try std.testing.expectApproxEqAbs(want, got, 1e-6 * (@abs(want) + 1));
    }
    try std.testing.expectError(error.LengthMismatch, swiglu(&g, u[0..3], &y));
    var x = g;
    try softmax(&x, 37, 0.5);
    var m: f64 = -std.math.inf(f64);
    for (g) |v| m = @max(m, @as(f64, v) * 0.5);
    var s: f64 = 0;
    for (g) |v| s += @exp(@as(f64, v) * 0.5 - m);
    var total: f64 = 0;
    for (g, x) |v, got| {
        const want = @exp(@as(f64, v) * 0.5 - m) / s;
        try std.testing.expectApproxEqAbs(want, got, 1e-6);
        total += got;
    }
    try std.testing.expectApproxEqAbs(@as(f64, 1), total, 1e-5);
    try std.testing.expectError(error.LengthMismatch, softmax(&x, 5, 1));
}
