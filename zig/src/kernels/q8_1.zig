//! Q8_1: Q8_0 plus the block's sum: value = d·q, s = d·Σq. The activation
//! type of Q4_1 and Q5_1, whose dot products need Σa for their offset term.
//! GGML: `block_q8_1 { ggml_half d; ggml_half s; int8_t qs[32]; }` (36 bytes).
const std = @import("std");
const qdot = @import("qdot.zig");

pub const Block = extern struct {
    d: f16,
    s: f16,
    qs: [32]i8,
};
comptime {
    std.debug.assert(@sizeOf(Block) == 36);
}
pub const block_elems = 32;

/// GGML's reference quantizer: as Q8_0, then s = f16(Σq · d) with the f32 d.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        const d = qdot.absMax(x).abs / 127.0;
        const id = qdot.inverse(d);
        var sum: i32 = 0;
        for (&b.qs, x) |*q, v| {
            q.* = @intFromFloat(@round(v * id));
            sum += q.*;
        }
        b.d = @floatCast(d);
        b.s = @floatCast(@as(f32, @floatFromInt(sum)) * d);
    }
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        for (dst[i * block_elems ..][0..block_elems], b.qs) |*y, q| y.* = @as(f32, @floatFromInt(q)) * d;
    }
}

test "q8_1: s is d times the sum of the quants" {
    var x: [64]f32 = undefined;
    qdot.testing.fill(&x, 3);
    var b: [2]Block = undefined;
    quantize(&x, &b);
    var back: [64]f32 = undefined;
    dequantize(&b, &back);
    try std.testing.expect(qdot.testing.rmse(&x, &back) < 0.015);
    for (b) |blk| {
        var sum: i32 = 0;
        for (blk.qs) |q| sum += q;
        const want: f32 = @as(f32, @floatFromInt(sum)) * @as(f32, blk.d);
        try std.testing.expect(@abs(@as(f32, blk.s) - want) <= @abs(want) * 2e-3 + 1e-3);
    }
}
