//! Q2_K: 256 weights per super-block in 16 sub-blocks of 16; each weight is
//! `d·sc_j·q − dmin·m_j` with q in 0..3 and 4-bit sc_j, m_j.
//! Layout (GGML `block_q2_K`): u8 scales[16] (sc_j low nibble, m_j high);
//! u8 qs[64]; f16 d; f16 dmin. Weight 128h+32k+l is bits 2k, 2k+1 of qs[32h+l].
const std = @import("std");
const kq = @import("kquant.zig");
const q8_k = @import("q8_k.zig");

pub const block_elems = kq.qk;
pub const Activation = q8_k.Block;

pub const Block = extern struct {
    scales: [block_elems / 16]u8,
    qs: [block_elems / 4]u8,
    d: f16,
    dmin: f16,
};
/// The largest magnitude `quantize` accepts: beyond it the f16 block scales
/// would overflow (d and dmin are the largest scale and offset over 15: offsets reach |x|; 65504 is f16's largest).
pub const max_abs: f32 = 8.0e5;

comptime {
    std.debug.assert(@sizeOf(Block) == 84);
}

fn value(b: *const Block, e: usize) u8 {
    return (b.qs[32 * (e / 128) + e % 32] >> @intCast(2 * ((e % 128) / 32))) & 3;
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        const dmin: f32 = b.dmin;
        for (dst[i * block_elems ..][0..block_elems], 0..) |*y, e| {
            const s = b.scales[e / 16];
            const dl = d * @as(f32, @floatFromInt(s & 0xF));
            const ml = dmin * @as(f32, @floatFromInt(s >> 4));
            y.* = dl * @as(f32, @floatFromInt(value(b, e))) - ml;
        }
    }
}

/// Each sub-block is fitted affinely (kquant.fitAffine), the 16 scales and
/// 16 offsets stored in 4 bits against their maxima, then the weights
/// rounded again with the scales as stored.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    const ones: [16]f32 = @splat(1);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        var l: [block_elems]u8 = undefined;
        var scales: [16]f32 = undefined;
        var offsets: [16]f32 = undefined;
        for (0..16) |j| {
            const fit = kq.fitAffine(x[16 * j ..][0..16], &ones, 3, -0.5, 0.1, 15, l[16 * j ..][0..16]);
            scales[j] = fit.scale;
            offsets[j] = fit.offset;
        }
        const max_scale = std.mem.max(f32, &scales);
        const max_offset = std.mem.max(f32, &offsets);
        const inv_scale: f32 = if (max_scale > 0) 15 / max_scale else 0;
        const inv_offset: f32 = if (max_offset > 0) 15 / max_offset else 0;
        b.d = @floatCast(max_scale / 15);
        b.dmin = @floatCast(max_offset / 15);
        for (&b.scales, scales, offsets) |*s, sv, ov| {
            const ls: u8 = @intCast(std.math.clamp(kq.nearestInt(inv_scale * sv), 0, 15));
            const lm: u8 = @intCast(std.math.clamp(kq.nearestInt(inv_offset * ov), 0, 15));
            s.* = ls | (lm << 4);
        }
        for (0..16) |j| {
            const dj = @as(f32, b.d) * @as(f32, @floatFromInt(b.scales[j] & 0xF));
            if (dj == 0) continue;
            const mj = @as(f32, b.dmin) * @as(f32, @floatFromInt(b.scales[j] >> 4));
            for (x[16 * j ..][0..16], l[16 * j ..][0..16]) |v, *li| li.* = @intCast(std.math.clamp(kq.nearestInt((v + mj) / dj), 0, 3));
        }
        b.qs = @splat(0);
        for (l, 0..) |li, e| b.qs[32 * (e / 128) + e % 32] |= li << @intCast(2 * ((e % 128) / 32));
    }
}

fn unpackGeneric(b: *const Block, q: *[block_elems]i8) void {
    for (q, 0..) |*v, e| v.* = @intCast(value(b, e));
}

/// Weights 32c … 32c+31 (SIMD).
fn chunk(b: *const Block, comptime c: usize) kq.U8x32 {
    const qs: kq.U8x32 = b.qs[32 * (c / 4) ..][0..32].*;
    return (qs >> @splat(2 * (c % 4))) & @as(kq.U8x32, @splat(3));
}

/// 4-bit scales (low nibbles) and mins (high nibbles), one of each per 16 weights.
fn scalesOf(b: *const Block) struct { sc: [16]i16, m: [16]i16 } {
    const packed_scales: @Vector(16, u8) = b.scales;
    return .{
        .sc = @as(@Vector(16, i16), packed_scales & @as(@Vector(16, u8), @splat(0xF))),
        .m = @as(@Vector(16, i16), packed_scales >> @splat(4)),
    };
}

const dots = kq.Dots(Block, 0, unpackGeneric, chunk, scalesOf);
/// Scalar reference.
pub const dotGeneric = dots.dotGeneric;
/// SIMD dot product; the same bits as `dotGeneric`.
pub const dot = dots.dot;
/// `dot` of one row with `n` tokens' activations, each weight block unpacked
/// once for all of them: result t has the bits of `dot(w, a[t])`.
pub const dotN = dots.dotN;

test "q2_k: quantize error, SIMD = scalar, dot = f64 dot of dequantized" {
    try kq.testing.checkType(@This(), 0.45);
}
