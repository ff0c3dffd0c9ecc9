{
  "targets": [
    {
      "target_name": "nbdcrypt_xts",
      "sources": ["src/xts.c", "src/page-cache-io.c", "src/write-batch.c", "src/punch-hole.c",
                  "src/crypt-call.c", "src/sector-ciphers.c", "src/sector-modes.c", "src/twofish.c", "src/serpent.c",
                  "src/netlink.c", "src/file-lock.c", "src/socket-buffer.c"],
      "cflags_c": ["-std=c11", "-O3", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "conditions": [
        ["OS=='linux'", { "ldflags": ["-Wl,-z,relro,-z,now"] }]
      ]
    }
  ]
}
