//! Q4_1: blocks of 32 4-bit values with an f16 scale and minimum;
//! value = d·q + m. Byte j holds element j (low nibble) and j+16 (high).
//! GGML: `block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }` (20 bytes);
//! activations Q8_1 (its s = d·Σq carries the m term).
const std = @import("std");
const qdot = @import("qdot.zig");
const q8_1 = @import("q8_1.zig");

pub const Block = extern struct {
    d: f16,
    m: f16,
    qs: [16]u8,
};
comptime {
    std.debug.assert(@sizeOf(Block) == 20);
}
pub const block_elems = 32;
pub const Activation = q8_1.Block;

/// GGML's reference quantizer: d = (max − min)/15, m = min, q = trunc((x − min)/d + 0.5) ≤ 15.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        const r = qdot.minMax(x);
        const d = (r.max - r.min) / 15.0;
        const id = qdot.inverse(d);
        b.d = @floatCast(d);
        b.m = @floatCast(r.min);
        for (&b.qs, 0..) |*q, j| {
            const lo: u8 = @intCast(qdot.truncClamp((x[j] - r.min) * id + 0.5, 0, 15));
            const hi: u8 = @intCast(qdot.truncClamp((x[j + 16] - r.min) * id + 0.5, 0, 15));
            q.* = lo | hi << 4;
        }
    }
}

fn unpackScalar(b: *const Block) [32]i8 {
    var v: [32]i8 = undefined;
    for (b.qs, 0..) |q, j| {
        v[j] = @intCast(q & 0x0F);
        v[j + 16] = @intCast(q >> 4);
    }
    return v;
}

inline fn unpack(b: *const Block) qdot.U8x32 {
    const qs: @Vector(16, u8) = b.qs;
    return std.simd.join(qs & @as(@Vector(16, u8), @splat(0x0F)), qs >> @splat(4));
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        const m: f32 = b.m;
        for (dst[i * block_elems ..][0..block_elems], unpackScalar(b)) |*y, q| y.* = @as(f32, @floatFromInt(q)) * d + m;
    }
}

pub inline fn quads(wb: *const Block, ab: *const Activation) qdot.I32x8 {
    return qdot.quadsUnsigned(unpack(wb), ab.qs);
}

pub fn quadsScalar(wb: *const Block, ab: *const Activation) [qdot.quad_lanes]i32 {
    return qdot.quadsScalar(&unpackScalar(wb), &ab.qs);
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

test "q4_1: SIMD = scalar bit for bit, dot within budget of f32, round trip" {
    try qdot.testing.checkType(@This(), q8_1, 0.12, 0.18);
}
