# mime.awk — splits a MIME multipart user-data (as cloud-init accepts it) into its parts.
# Runs under busybox awk in the guest.
#
#   awk -v out=DIR -f mime.awk FILE
#
# For part N (1, 2, ...) writes DIR/N.type ("content/type encoding", lowercase) and DIR/N.body.
# A nested multipart part is written whole (its headers and body) with its multipart type, so
# the caller can split it again. Prints the number of parts.

function lower(s) { return tolower(s) }
function header_value(h,    v) { v = h; sub(/^[^:]*:[ \t]*/, "", v); return v }
# The boundary parameter of a Content-Type value.
function boundary_of(v,    b) {
  if (!match(v, /[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]=/)) return ""
  b = substr(v, RSTART + RLENGTH)
  if (substr(b, 1, 1) == "\"") { b = substr(b, 2); sub(/".*/, "", b) }
  else sub(/[; \t].*/, "", b)
  return b
}
function start_part() {
  n++
  inhead = 1; ptype = "text/plain"; penc = "7bit"; phead = ""; lasth = ""
  body = out "/" n ".body"
  printf "" > body
}
function end_part() {
  if (n == 0 || done_part[n]) return
  done_part[n] = 1
  close(body)
  print ptype " " penc > (out "/" n ".type")
  close(out "/" n ".type")
}
BEGIN { n = 0; top = 1; boundary = ""; inpart = 0; lasth = "" }
{
  sub(/\r$/, "")
  if (top) {                                   # the message's own headers
    if ($0 == "") {
      top = 0
      if (boundary == "") exit 1
      next
    }
    if ($0 ~ /^[ \t]/) { lasth = lasth " " $0 } else lasth = $0
    if (lower(lasth) ~ /^content-type:/) boundary = boundary_of(header_value(lasth))
    next
  }
  if ($0 == "--" boundary || $0 == "--" boundary "--") {
    end_part()
    inpart = 0
    if ($0 == "--" boundary) { start_part(); inpart = 1 }
    next
  }
  if (!inpart) next                            # preamble and epilogue
  if (inhead) {
    if ($0 == "") {
      inhead = 0
      if (ptype ~ /^multipart\//) printf "%s\n", phead > body
      next
    }
    phead = phead (phead == "" ? "" : "\n") $0
    if ($0 ~ /^[ \t]/) lasth = lasth " " $0; else lasth = $0
    if (lower(lasth) ~ /^content-type:/) { ptype = lower(header_value(lasth)); sub(/[; \t].*/, "", ptype) }
    if (lower(lasth) ~ /^content-transfer-encoding:/) penc = lower(header_value(lasth))
    next
  }
  print > body
}
END { end_part(); print n }
