//! The weight and activation types of GGML, by their GGUF type id, and the
//! contract every per-type file (`q4_0.zig`, `q4_k.zig`, …) implements.
//!
//! A type file `T.zig` for a block-quantized type exports:
//!
//!   pub const Block = extern struct { ... };       // GGML's exact layout
//!   comptime { std.debug.assert(@sizeOf(Block) == N); }
//!   pub const block_elems: usize;                  // 32 or 256 (QK / QK_K)
//!   pub const Activation = q8_0.Block | q8_1.Block | q8_k.Block;  // GGML's vec_dot_type
//!   pub fn dequantize(src: []const Block, dst: []f32) void;       // dst.len == src.len * block_elems
//!   pub fn quantize(src: []const f32, dst: []Block) void;         // reference-quality (GGML's search)
//!   pub fn dotGeneric(w: []const Block, a: []const Activation) f32;  // scalar reference
//!   pub fn dot(w: []const Block, a: []const Activation) f32;         // SIMD (vector width from target)
//!   test "..." { SIMD vs generic vs f32, within the type's error budget }
//!
//! Activation types (q8_0, q8_1, q8_k) export `Block`, `block_elems`,
//! `quantize` and `dequantize`. Float types dot against their own type (f16, bf16:
//! `Activation` is the weight's own element type, GGML's vec_dot_type), f32 against f32.
//!
//! Integer sums inside a block are exact; the per-block float accumulation
//! order is fixed (block by block, left to right, or a fixed lane shape like
//! simd.zig), so results do not depend on thread count.
const std = @import("std");

/// GGUF/GGML tensor type ids (ggml.h `enum ggml_type`). Only the ids edgemoe
/// knows are listed; others are refused by readers with a clear error.
pub const GgmlType = enum(u32) {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    bf16 = 30,
    _,

    /// Elements per block (1 for float types).
    pub fn blockElems(t: GgmlType) ?usize {
        return switch (t) {
            .f32, .f16, .bf16 => 1,
            .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1 => 32,
            .q2_k, .q3_k, .q4_k, .q5_k, .q6_k, .q8_k => 256,
            _ => null,
        };
    }

    /// Bytes per block (GGML's type_size).
    pub fn blockBytes(t: GgmlType) ?usize {
        return switch (t) {
            .f32 => 4,
            .f16, .bf16 => 2,
            .q4_0 => 18,
            .q4_1 => 20,
            .q5_0 => 22,
            .q5_1 => 24,
            .q8_0 => 34,
            .q8_1 => 36,
            .q2_k => 84,
            .q3_k => 110,
            .q4_k => 144,
            .q5_k => 176,
            .q6_k => 210,
            .q8_k => 292,
            _ => null,
        };
    }

    /// Bytes of a row of `n` elements, or null if `n` is not a multiple of the block.
    pub fn rowBytes(t: GgmlType, n: usize) ?usize {
        const be = t.blockElems() orelse return null;
        if (n % be != 0) return null;
        return std.math.mul(usize, n / be, t.blockBytes().?) catch null;
    }
};

test "row sizes follow GGML's type_size / blck_size" {
    try std.testing.expectEqual(@as(?usize, 18 * 4), GgmlType.q4_0.rowBytes(128));
    try std.testing.expectEqual(@as(?usize, null), GgmlType.q4_k.rowBytes(128));
    try std.testing.expectEqual(@as(?usize, 210 * 2), GgmlType.q6_k.rowBytes(512));
    try std.testing.expectEqual(@as(?usize, null), @as(GgmlType, @enumFromInt(99)).blockElems());
}
