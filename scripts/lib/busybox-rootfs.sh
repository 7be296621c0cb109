# busybox_rootfs DIR: a minimal root filesystem from Debian's busybox-static (no internet images here).
busybox_rootfs() {
  dir=$1
  [ -x "$dir/bin/sh" ] && return 0
  mkdir -p "$dir"
  for d in bin sbin usr/bin usr/sbin etc proc sys dev tmp root var run; do mkdir -p "$dir/$d"; done
  cp /bin/busybox "$dir/bin/busybox"
  /bin/busybox --list-full | while read -r a; do [ -e "$dir/$a" ] || ln -s /bin/busybox "$dir/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/etc/group"
}
