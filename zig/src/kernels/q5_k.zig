//! Q5_K: like Q4_K with a fifth bit per weight: `d·sc_j·q − dmin·m_j`, q in
//! 0..31, 8 sub-blocks of 32 with 6-bit sc_j, m_j.
//! Layout (GGML `block_q5_K`): f16 d; f16 dmin; u8 scales[12] (see
//! kquant.packScaleMin); u8 qh[32]; u8 qs[128]. In 64-weight chunk c, byte
//! qs[32c+l] holds the low 4 bits of weights 64c+l (low nibble) and 64c+32+l
//! (high nibble); their fifth bits are bits 2c and 2c+1 of qh[l].
const std = @import("std");
const kq = @import("kquant.zig");
const q8_k = @import("q8_k.zig");

pub const block_elems = kq.qk;
pub const Activation = q8_k.Block;

pub const Block = extern struct {
    d: f16,
    dmin: f16,
    scales: [12]u8,
    qh: [block_elems / 8]u8,
    qs: [block_elems / 2]u8,
};
/// The largest magnitude `quantize` accepts: beyond it the f16 block scales
/// would overflow (dmin is the largest offset (up to about |x|) over 63; 65504 is f16's largest).
pub const max_abs: f32 = 3.5e6;

comptime {
    std.debug.assert(@sizeOf(Block) == 176);
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const y = dst[i * block_elems ..][0..block_elems];
        const d: f32 = b.d;
        const dmin: f32 = b.dmin;
        for (0..4) |c| {
            const lo = kq.unpackScaleMin(&b.scales, 2 * c);
            const hi = kq.unpackScaleMin(&b.scales, 2 * c + 1);
            const d1 = d * @as(f32, @floatFromInt(lo.sc));
            const m1 = dmin * @as(f32, @floatFromInt(lo.m));
            const d2 = d * @as(f32, @floatFromInt(hi.sc));
            const m2 = dmin * @as(f32, @floatFromInt(hi.m));
            for (b.qs[32 * c ..][0..32], b.qh, 0..) |q, h, l| {
                const q1 = (q & 0xF) | (((h >> @intCast(2 * c)) & 1) << 4);
                const q2 = (q >> 4) | (((h >> @intCast(2 * c + 1)) & 1) << 4);
                y[64 * c + l] = d1 * @as(f32, @floatFromInt(q1)) - m1;
                y[64 * c + 32 + l] = d2 * @as(f32, @floatFromInt(q2)) - m2;
            }
        }
    }
}

pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        var l: [block_elems]u8 = undefined;
        const r = kq.quantizeAffine8(src[i * block_elems ..][0..block_elems], 31, -0.5, 15, &l);
        b.d = r.d;
        b.dmin = r.dmin;
        b.scales = r.scales;
        b.qh = @splat(0);
        for (0..4) |c| {
            for (0..32) |k| {
                const v1 = l[64 * c + k];
                const v2 = l[64 * c + 32 + k];
                b.qs[32 * c + k] = (v1 & 0xF) | ((v2 & 0xF) << 4);
                b.qh[k] |= ((v1 >> 4) << @intCast(2 * c)) | ((v2 >> 4) << @intCast(2 * c + 1));
            }
        }
    }
}

fn unpackGeneric(b: *const Block, q: *[block_elems]i8) void {
    for (0..4) |c| {
        for (0..32) |k| {
            const h = b.qh[k];
            q[64 * c + k] = @intCast((b.qs[32 * c + k] & 0xF) | (((h >> @intCast(2 * c)) & 1) << 4));
            q[64 * c + 32 + k] = @intCast((b.qs[32 * c + k] >> 4) | (((h >> @intCast(2 * c + 1)) & 1) << 4));
        }
    }
}

/// Weights 32c … 32c+31 (SIMD): the fifth bit of chunk c is bit c of qh.
fn chunk(b: *const Block, comptime c: usize) kq.U8x32 {
    const v: kq.U8x32 = b.qs[32 * (c / 2) ..][0..32].*;
    const qh: kq.U8x32 = b.qh;
    const low = if (c % 2 == 0) v & @as(kq.U8x32, @splat(0xF)) else v >> @splat(4);
    return low | (((qh >> @splat(c)) & @as(kq.U8x32, @splat(1))) << @splat(4));
}

fn scalesOf(b: *const Block) kq.ScalesMins {
    return kq.scalesMins(&b.scales);
}

const dots = kq.Dots(Block, 0, unpackGeneric, chunk, scalesOf);
/// Scalar reference.
pub const dotGeneric = dots.dotGeneric;
/// SIMD dot product; the same bits as `dotGeneric`.
pub const dot = dots.dot;
/// `dot` of one row with `n` tokens' activations, each weight block unpacked
/// once for all of them: result t has the bits of `dot(w, a[t])`.
pub const dotN = dots.dotN;

test "q5_k: quantize error, SIMD = scalar, dot = f64 dot of dequantized" {
    try kq.testing.checkType(@This(), 0.05);
}
