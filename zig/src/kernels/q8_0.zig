//! Q8_0: blocks of 32 signed bytes with one f16 scale; value = d·q.
//! Both a weight type and the activation type of Q4_0, Q5_0 and Q8_0.
//! GGML: `block_q8_0 { ggml_half d; int8_t qs[32]; }` (34 bytes).
const std = @import("std");
const qdot = @import("qdot.zig");

pub const Block = extern struct {
    d: f16,
    qs: [32]i8,
};
comptime {
    std.debug.assert(@sizeOf(Block) == 34);
}
pub const block_elems = 32;
pub const Activation = Block;

/// GGML's reference quantizer: d = max|x|/127, q = round(x/d) (half away from zero).
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        const d = qdot.absMax(x).abs / 127.0;
        const id = qdot.inverse(d);
        b.d = @floatCast(d);
        for (&b.qs, x) |*q, v| q.* = @intFromFloat(@round(v * id));
    }
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        for (dst[i * block_elems ..][0..block_elems], b.qs) |*y, q| y.* = @as(f32, @floatFromInt(q)) * d;
    }
}

pub inline fn quads(wb: *const Block, ab: *const Activation) qdot.I32x8 {
    return qdot.quadsSigned(wb.qs, ab.qs);
}

pub fn quadsScalar(wb: *const Block, ab: *const Activation) [qdot.quad_lanes]i32 {
    return qdot.quadsScalar(&wb.qs, &ab.qs);
}

pub inline fn scale(wb: *const Block, ab: *const Activation) [2]f16 {
    return .{ wb.d, ab.d };
}

pub fn dotGeneric(w: []const Block, a: []const Activation) f32 {
    return qdot.dotScalar(@This(), w, a);
}

pub fn dot(w: []const Block, a: []const Activation) f32 {
    return qdot.dot(@This(), w, a);
}

/// `dot` of one row with `n` tokens' activations at once: result t has the bits of `dot(w, a[t])`.
pub fn dotN(comptime n: usize, w: []const Block, a: *const [n][]const Activation) [n]f32 {
    return qdot.dotN(@This(), n, w, a);
}

test "q8_0: SIMD = scalar bit for bit, dot within budget of f32, round trip" {
    // Budget: each of w and x carries ≤ 1/254 relative rounding error per element.
    try qdot.testing.checkType(@This(), @This(), 2.0 / 254.0, 0.015);
}

test "q8_0: quantize follows GGML's rounding" {
    var x: [32]f32 = undefined;
    for (&x, 0..) |*v, i| v.* = @as(f32, @floatFromInt(i)) - 16;
    var b: [1]Block = undefined;
    quantize(&x, &b);
    try std.testing.expectEqual(@as(f16, 16.0 / 127.0), b[0].d);
    try std.testing.expectEqual(@as(i8, -127), b[0].qs[0]);
    // 1 * 127/16 = 7.9375 rounds to 8.
    try std.testing.expectEqual(@as(i8, 8), b[0].qs[17]);
}
