//! RMSNorm as GGML computes it (ggml_compute_forward_rms_norm_f32, then
//! ggml_mul by the weight): each row's Σx² is summed in f64 over f32
//! products, mean and scale are f32, y = x·scale, then y·w, all in f32.
const std = @import("std");
const status = @import("../c_api/status.zig");

const Error = status.Error;

/// `out[r] = x[r] / sqrt(mean(x[r]²) + eps) * w` for every row `r` of `n`
/// elements (`w` of `n` elements, or empty for no weight). `out` may be `x`.
pub fn rmsNorm(x: []const f32, w: []const f32, eps: f32, n: usize, out: []f32) Error!void {
    if (n == 0) return status.fail(error.InvalidArgument, "rms_norm: row length n must be positive", .{});
    if (x.len % n != 0) return status.fail(error.LengthMismatch, "rms_norm: x has {d} elements, not a multiple of the row length {d}", .{ x.len, n });
    if (out.len != x.len) return status.fail(error.LengthMismatch, "rms_norm: out has {d} elements, expected {d} as x", .{ out.len, x.len });
    if (w.len != 0 and w.len != n) return status.fail(error.LengthMismatch, "rms_norm: w has {d} elements, expected 0 or the row length {d}", .{ w.len, n });
    if (!(eps >= 0) or !std.math.isFinite(eps)) return status.fail(error.InvalidArgument, "rms_norm: eps is {d}, expected a finite value >= 0", .{eps});
    var r: usize = 0;
    while (r < x.len) : (r += n) {
        const xr = x[r..][0..n];
        const yr = out[r..][0..n];
        var sum: f64 = 0;
        for (xr) |v| sum += v * v;
        const mean: f32 = @floatCast(sum / @as(f64, @floatFromInt(n)));
        const scale: f32 = 1.0 / @sqrt(mean + eps);
        for (xr, yr) |v, *y| y.* = v * scale;
        if (w.len != 0) for (yr, w) |*y, g| {
            y.* *= g;
        };
    }
}

test "rms_norm: close to an f64 reference, rows independent, in place, shape errors" {
    var x: [3 * 40]f32 = undefined;
    @import("qdot.zig").testing.fill(&x, 5);
    var w: [40]f32 = undefined;
    @import("qdot.zig").testing.fill(&w, 6);
    var y: [x.len]f32 = undefined;
    try rmsNorm(&x, &w, 1e-6, 40, &y);
    for (0..3) |r| {
        var ss: f64 = 0;
        for (x[r * 40 ..][0..40]) |v| ss += @as(f64, v) * v;
        const s = 1 / @sqrt(ss / 40 + 1e-6);
        for (0..40) |i| {
            const want = x[r * 40 + i] * s * w[i];
            try std.testing.expectApproxEqAbs(want, y[r * 40 + i], 1e-5 * (@abs(want) + 1));
        }
    }
    var z = x;
    try rmsNorm(&z, &w, 1e-6, 40, &z);
    try std.testing.expectEqualSlices(f32, &y, &z);
    try std.testing.expectError(error.LengthMismatch, rmsNorm(&x, w[0..3], 1e-6, 40, &y));
    try std.testing.expectError(error.LengthMismatch, rmsNorm(&x, &w, 1e-6, 7, &y));
    try std.testing.expectError(error.InvalidArgument, rmsNorm(&x, &w, 1e-6, 0, &y));
}
