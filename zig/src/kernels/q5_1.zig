//! Q5_1: blocks of 32 5-bit values with an f16 scale and minimum;
//! value = d·q + m, bits laid out as in Q5_0.
//! GGML: `block_q5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; }` (24 bytes);
//! activations Q8_1.
const std = @import("std");
const qdot = @import("qdot.zig");
const q8_1 = @import("q8_1.zig");
const q5_0 = @import("q5_0.zig");

pub const Block = extern struct {
    d: f16,
    m: f16,
    qh: [4]u8,
    qs: [16]u8,
};
comptime {
    std.debug.assert(@sizeOf(Block) == 24);
}
pub const block_elems = 32;
pub const Activation = q8_1.Block;

/// GGML's reference quantizer: d = (max − min)/31, m = min, q = trunc((x − min)/d + 0.5).
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        const r = qdot.minMax(x);
        const d = (r.max - r.min) / 31.0;
        const id = qdot.inverse(d);
        b.d = @floatCast(d);
        b.m = @floatCast(r.min);
        var q: [32]u8 = undefined;
        for (&q, x) |*o, v| o.* = @intCast(qdot.truncClamp((v - r.min) * id + 0.5, 0, 31));
        q5_0.packFive(&q, &b.qs, &b.qh);
    }
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        const m: f32 = b.m;
        const v = q5_0.fiveScalar(&b.qs, &b.qh);
        for (dst[i * block_elems ..][0..block_elems], v) |*y, q| y.* = @as(f32, @floatFromInt(q)) * d + m;
    }
}

pub inline fn quads(wb: *const Block, ab: *const Activation) qdot.I32x8 {
    return qdot.quadsUnsigned(q5_0.five(&wb.qs, &wb.qh), ab.qs);
}

pub fn quadsScalar(wb: *const Block, ab: *const Activation) [qdot.quad_lanes]i32 {
    return qdot.quadsScalar(&q5_0.fiveScalar(&wb.qs, &wb.qh), &ab.qs);
}

pub inline fn scale(wb: *const Block, ab: *const Activation) [2]f16 {
    return .{ wb.d, ab.d };
}

pub inline fn offset(wb: *const Block, ab: *const Activation) [2]f16 {
    return .{ wb.m, ab.s };
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

test "q5_1: SIMD = scalar bit for bit, dot within budget of f32, round trip" {
    try qdot.testing.checkType(@This(), q8_1, 0.06, 0.09);
}
