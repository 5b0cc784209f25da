//! The checksum of expert blobs: XXH64 with seed 0, computed natively so the
//! store can verify every read at memory speed.
const std = @import("std");

pub fn hash64(bytes: []const u8) u64 {
    return std.hash.XxHash64.hash(0, bytes);
}

test "xxh64 known values" {
    // Published XXH64 test vectors (seed 0).
    try std.testing.expectEqual(@as(u64, 0xef46db3751d8e999), hash64(""));
    try std.testing.expectEqual(@as(u64, 0x44bc2cf5ad770999), hash64("abc"));
}
