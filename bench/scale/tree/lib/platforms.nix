# generated: the systems packages name in meta.platforms, as lib.platforms
let
  linux = [ "aarch64-linux" "armv5tel-linux" "armv6l-linux" "armv7a-linux" "armv7l-linux" "i686-linux"
    "loongarch64-linux" "m68k-linux" "microblaze-linux" "microblazeel-linux" "mips-linux" "mips64-linux"
    "mips64el-linux" "mipsel-linux" "powerpc64-linux" "powerpc64le-linux" "riscv32-linux" "riscv64-linux"
    "s390-linux" "s390x-linux" "x86_64-linux" ];
  darwin = [ "x86_64-darwin" "aarch64-darwin" ];
in
{ inherit linux darwin; unix = linux ++ darwin; all = linux ++ darwin; }
