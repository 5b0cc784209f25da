//! y = W·x for a row-major weight matrix of any supported element type.
//! Each row is one dot product; rows are independent, so threads may split
//! rows (never a dot product) without changing a single bit of the result.
const std = @import("std");
const f32k = @import("f32.zig");

pub fn matvecF32(w: []const f32, x: []const f32, y: []f32) void {
    const cols = x.len;
    std.debug.assert(w.len == cols * y.len);
    for (y, 0..) |*out, r| out.* = f32k.dot(w[r * cols ..][0..cols], x);
}

test "matvec f32 rows equal per-row dots" {
    const w = [_]f32{ 1, 2, 3, 4, 5, 6 };
    const x = [_]f32{ 1, 0, -1 };
    var y: [2]f32 = undefined;
    matvecF32(&w, &x, &y);
    try std.testing.expectEqual([2]f32{ -2, -2 }, y);
}
