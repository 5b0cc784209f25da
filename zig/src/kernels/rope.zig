//! Rotary position embedding as GGML's rope (ggml_rope_ext without YaRN or
//! frequency factors): per token at position p, pair i of the first `n_dims`
//! dims of every head turns by θ_i = p · base^(-2i/n_dims), θ stepped by an f32
//! multiply as GGML's rope cache does; the remaining dims are left as they are.
//! NORM mode rotates adjacent pairs (2i, 2i+1), NEOX mode (i, i + n_dims/2).
const std = @import("std");
const status = @import("../c_api/status.zig");

const Error = status.Error;

/// GGML's rope mode values (GGML_ROPE_TYPE_*).
pub const Mode = enum(u32) { norm = 0, neox = 2, _ };

pub const Shape = struct { n_heads: usize, head_dim: usize, n_dims: usize, base: f32, mode: Mode };

/// Rotates `x` (`pos.len` tokens × `n_heads` × `head_dim`) in place.
pub fn rope(x: []f32, pos: []const i32, s: Shape) Error!void {
    if (s.mode != .norm and s.mode != .neox) return status.fail(error.InvalidArgument, "rope: mode {d} is neither 0 (norm) nor 2 (neox)", .{@intFromEnum(s.mode)});
    if (s.n_dims == 0 or s.n_dims % 2 != 0 or s.n_dims > s.head_dim)
        return status.fail(error.InvalidArgument, "rope: n_dims {d} must be even, positive and at most head_dim {d}", .{ s.n_dims, s.head_dim });
    if (!(s.base > 0) or !std.math.isFinite(s.base)) return status.fail(error.InvalidArgument, "rope: base is {d}, expected a positive finite value", .{s.base});
    const per_token = std.math.mul(usize, s.n_heads, s.head_dim) catch
        return status.fail(error.InvalidArgument, "rope: n_heads {d} x head_dim {d} overflows", .{ s.n_heads, s.head_dim });
    const need = std.math.mul(usize, per_token, pos.len) catch
        return status.fail(error.InvalidArgument, "rope: {d} tokens x {d} overflows", .{ pos.len, per_token });
    if (x.len != need) return status.fail(error.LengthMismatch, "rope: x has {d} elements, expected n_tokens*n_heads*head_dim = {d}*{d}*{d} = {d}", .{ x.len, pos.len, s.n_heads, s.head_dim, need });
    for (pos, 0..) |p, i| if (p < 0) return status.fail(error.InvalidArgument, "rope: pos[{d}] is {d}, expected >= 0", .{ i, p });

    const half = s.n_dims / 2;
    // powf, cosf and sinf as glibc computes them for GGML: correctly rounded, which
    // the f64 functions rounded once to f32 reproduce.
    const exponent: f32 = -2.0 / @as(f32, @floatFromInt(s.n_dims));
    const theta_scale: f32 = @floatCast(std.math.pow(f64, s.base, exponent));
    for (pos, 0..) |p, t| {
        const xt = x[t * per_token ..][0..per_token];
        var theta: f32 = @floatFromInt(p);
        for (0..half) |i| {
            const c: f32 = @floatCast(@cos(@as(f64, theta)));
            const sn: f32 = @floatCast(@sin(@as(f64, theta)));
            theta *= theta_scale;
            const a, const b = if (s.mode == .neox) .{ i, i + half } else .{ 2 * i, 2 * i + 1 };
            var h: usize = 0;
            while (h < per_token) : (h += s.head_dim) {
                const x0 = xt[h + a];
                const x1 = xt[h + b];
                xt[h + a] = x0 * c - x1 * sn;
                xt[h + b] = x0 * sn + x1 * c;
            }
        }
    }
}

test "rope: close to an f64 reference in both modes, later dims untouched, shape errors" {
    const heads = 3;
    const hd = 10;
    var x: [2 * heads * hd]f32 = undefined;
    @import("qdot.zig").testing.fill(&x, 9);
    const pos = [_]i32{ 0, 37 };
    for ([_]Mode{ .norm, .neox }) |mode| {
        var y = x;
        try rope(&y, &pos, .{ .n_heads = heads, .head_dim = hd, .n_dims = 8, .base = 10000, .mode = mode });
        for (pos, 0..) |p, t| for (0..heads) |h| {
            const o = t * heads * hd + h * hd;
            for (0..4) |i| {
                const th = @as(f64, @floatFromInt(p)) * std.math.pow(f64, 10000, -2.0 * @as(f64, @floatFromInt(i)) / 8);
                const a, const b = if (mode == .neox) .{ o + i, o + i + 4 } else .{ o + 2 * i, o + 2 * i + 1 };
                try std.testing.expectApproxEqAbs(x[a] * @cos(th) - x[b] * @sin(th), y[a], 1e-4);
                try std.testing.expectApproxEqAbs(x[a] * @sin(th) + x[b] * @cos(th), y[b], 1e-4);
            }
            try std.testing.expectEqualSlices(f32, x[o + 8 .. o + hd], y[o + 8 .. o + hd]);
        };
    }
    try std.testing.expectError(error.InvalidArgument, rope(&x, &pos, .{ .n_heads = heads, .head_dim = hd, .n_dims = 12, .base = 10000, .mode = .norm }));
    try std.testing.expectError(error.LengthMismatch, rope(x[1..], &pos, .{ .n_heads = heads, .head_dim = hd, .n_dims = 8, .base = 10000, .mode = .norm }));
    try std.testing.expectError(error.InvalidArgument, rope(&x, &pos, .{ .n_heads = heads, .head_dim = hd, .n_dims = 8, .base = 10000, .mode = @enumFromInt(1) }));
}
