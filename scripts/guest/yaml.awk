# yaml.awk — reader for the small YAML subset used by NoCloud meta-data and #cloud-config
# user-data. Runs under busybox awk in the guest.
#
#   awk -v mode=scalar -v key=K -f yaml.awk FILE  -> value of the top-level "K: value"
#   awk -v mode=list   -v key=K -f yaml.awk FILE  -> items of list "K:" (any depth), 1 per line
#   awk -v mode=runcmd -v key=K -f yaml.awk FILE  -> a shell script, one command per item
#   awk -v mode=users  -f yaml.awk FILE           -> the top-level users: list, one record a line:
#       "user NAME", "shell NAME SHELL", "sudo NAME RULE", "key NAME KEY" (NAME "default" for
#       the "- default" item)
#
# mode=list with top=1 only reads a top-level "K:" list (not one nested under users:).
# Keys match with '-' and '_' treated alike. Supported values: plain, 'single' and "double"
# quoted scalars; block lists ("- item") and flow lists ("[a, 'b', "c"]"); "- |" / "- >"
# block scalars as list items; "# comments". In runcmd mode a string item is a shell command
# line, a flow-list item ([sh, -c, "echo hi"]) is an argv, shell-quoted and joined.

function norm(k) { gsub(/-/, "_", k); return k }
function ltrim(s) { sub(/^[ \t]+/, "", s); return s }
function rtrim(s) { sub(/[ \t]+$/, "", s); return s }
function trim(s) { return rtrim(ltrim(s)) }
function indent_of(s) { return match(s, /[^ ]/) - 1 }
function spaces(n,    r) { r = ""; while (n-- > 0) r = r " "; return r }
# Shell single-quote a word.
function shq(s) { gsub(/'/, "'\"'\"'", s); return "'" s "'" }

# Drop a " # comment" that is outside quotes. A quote only opens at the start of a token.
function strip_comment(s,    i, c, q, p) {
  q = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    p = (i == 1) ? " " : substr(s, i - 1, 1)
    if (q == "") {
      if ((c == "\"" || c == "'") && p ~ /[ \t\[,{:-]/) q = c
      else if (c == "#" && p ~ /[ \t]/) return substr(s, 1, i - 1)
    } else if (q == "'") {
      if (c == "'") q = ""
    } else {
      if (c == "\\") i++
      else if (c == "\"") q = ""
    }
  }
  return s
}

# Remove YAML quoting from a scalar.
function unquote(s,    out, i, c, n) {
  s = trim(s)
  n = length(s)
  if (n >= 2 && substr(s, 1, 1) == "'" && substr(s, n, 1) == "'") {
    s = substr(s, 2, n - 2); gsub(/''/, "'", s); return s
  }
  if (n >= 2 && substr(s, 1, 1) == "\"" && substr(s, n, 1) == "\"") {
    s = substr(s, 2, n - 2); out = ""
    for (i = 1; i <= length(s); i++) {
      c = substr(s, i, 1)
      if (c == "\\" && i < length(s)) {
        i++; c = substr(s, i, 1)
        if (c == "n") c = "\n"
        else if (c == "t") c = "\t"
        else if (c == "r") c = "\r"
        else if (c == "0") c = ""
      }
      out = out c
    }
    return out
  }
  return s
}

# Split a flow list "[a, 'b c', "d"]" into arr[1..n] (unquoted); returns n.
function parse_flow(s, arr,    n, i, c, q, cur) {
  s = trim(s)
  if (substr(s, 1, 1) == "[") s = substr(s, 2)
  if (substr(s, length(s), 1) == "]") s = substr(s, 1, length(s) - 1)
  n = 0; cur = ""; q = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (q != "") {
      cur = cur c
      if (q == "\"" && c == "\\") { cur = cur substr(s, i + 1, 1); i++ }
      else if (c == q) q = ""
    } else if ((c == "\"" || c == "'") && trim(cur) == "") {
      q = c; cur = c
    } else if (c == ",") {
      arr[++n] = unquote(cur); cur = ""
    } else cur = cur c
  }
  if (trim(cur) != "") arr[++n] = unquote(cur)
  return n
}

# Output one list item (already comment-stripped, without the leading "- ").
function emit_item(item,    arr, n, i, out) {
  if (item ~ /^[|>][-+]?$/) {              # block scalar: collect the following lines
    blk = 1; blk_fold = (item ~ /^>/); blk_min = -1; blk_buf = ""; blk_n = 0
    return
  }
  if (item ~ /^\[/) {                      # flow list
    n = parse_flow(item, arr); out = ""
    for (i = 1; i <= n; i++) out = out (i > 1 ? " " : "") (mode == "runcmd" ? shq(arr[i]) : arr[i])
    print out
    return
  }
  print unquote(item)
}

function end_block() {
  if (blk_n > 0) print blk_buf
  blk = 0
}

# Handle one non-blank, non-comment line (also called for "- key: v" list-item mappings).
function handle(line,    ind, s, item, k, v, n, arr, i) {
  ind = indent_of(line)
  s = rtrim(strip_comment(substr(line, ind + 1)))
  if (s == "") return
  if (s ~ /^-([ \t]|$)/) {                 # sequence item
    item = trim(substr(s, 2))
    if (inlist && ind < list_ind) inlist = 0
    if (inlist) {
      if (item_ind < 0) item_ind = ind
      if (ind == item_ind) { blk_ind = ind; emit_item(item); return }
      if (ind < item_ind) inlist = 0
    }
    # "- key: value" (a mapping inside a list, e.g. users:): treat as a key line.
    if (item ~ /^[A-Za-z0-9_.-]+[ \t]*:([ \t]|$)/) handle(spaces(ind + 2) item)
    return
  }
  if (s !~ /^[A-Za-z0-9_.-]+[ \t]*:([ \t]|$)/) return   # continuation lines etc.: ignored
  if (inlist && ind <= list_ind) inlist = 0
  k = s; sub(/[ \t]*:.*/, "", k); k = norm(k)
  v = s; sub(/^[^:]*:/, "", v); v = trim(v)
  if (mode == "scalar") {
    if (ind == 0 && k == want && v != "" && v !~ /^[|>]/) { found = 1; value = unquote(v) }
    return
  }
  if (k != want) return
  if (top && ind > 0) return
  if (v == "") { inlist = 1; list_ind = ind; item_ind = -1; return }
  if (v ~ /^\[/) {
    n = parse_flow(v, arr)
    for (i = 1; i <= n; i++) print arr[i]
    return
  }
  print unquote(v)
}

# --- users mode: a small state machine over the top-level users: list. ---
function u_flush(    i) {
  if (u_open && u_name != "") {
    print "user " u_name
    if (u_shell != "") print "shell " u_name " " u_shell
    for (i = 1; i <= u_nsudo; i++) print "sudo " u_name " " u_sudo[i]
    for (i = 1; i <= u_nkeys; i++) print "key " u_name " " u_keys[i]
  }
  u_open = 0; u_name = ""; u_shell = ""; u_nsudo = 0; u_nkeys = 0; u_sub = ""
}
# One "key: value" of the current user mapping (value "" opens a nested list).
function u_field(k, v,    n, arr, i) {
  k = norm(k)
  u_sub = ""
  if (v == "") { if (k == "ssh_authorized_keys" || k == "sudo") u_sub = k; return }
  if (v ~ /^\[/) {
    n = parse_flow(v, arr)
    for (i = 1; i <= n; i++) u_add(k, arr[i])
    return
  }
  v = unquote(v)
  if (k == "name") u_name = v
  else if (k == "shell") u_shell = v
  else u_add(k, v)
}
function u_add(k, v) {
  if (k == "ssh_authorized_keys") u_keys[++u_nkeys] = v
  else if (k == "sudo" && v != "false" && v != "False") u_sudo[++u_nsudo] = v
}
function users_line(line,    ind, s, item, k, v) {
  ind = indent_of(line)
  s = rtrim(strip_comment(substr(line, ind + 1)))
  if (s == "") return
  if (ind == 0 && s !~ /^-([ \t]|$)/) {         # a top-level key: users: starts or ends here
    u_flush()
    k = s; sub(/[ \t]*:.*/, "", k)
    v = s; sub(/^[^:]*:/, "", v); v = trim(v)
    u_in = (norm(k) == "users" && v == "")
    return
  }
  if (!u_in) return
  if (s ~ /^-([ \t]|$)/) {
    item = trim(substr(s, 2))
    if (u_item_ind < 0) u_item_ind = ind
    if (ind == u_item_ind) {                      # a new user
      u_flush()
      u_open = 1
      if (item ~ /^[A-Za-z0-9_.-]+[ \t]*:([ \t]|$)/) {
        u_map_ind = ind + 2
        k = item; sub(/[ \t]*:.*/, "", k)
        v = item; sub(/^[^:]*:/, "", v)
        u_field(k, trim(v))
      } else {
        u_name = unquote(item)
        u_map_ind = -1
      }
      return
    }
    if (u_open && u_sub != "") u_add(u_sub, unquote(item))   # an item of a nested list
    return
  }
  if (u_open && s ~ /^[A-Za-z0-9_.-]+[ \t]*:([ \t]|$)/ && ind > u_item_ind) {
    k = s; sub(/[ \t]*:.*/, "", k)
    v = s; sub(/^[^:]*:/, "", v)
    u_field(k, trim(v))
  }
}

BEGIN { want = norm(key); inlist = 0; blk = 0; found = 0; u_in = 0; u_open = 0; u_item_ind = -1 }
mode == "users" {
  sub(/\r$/, "")
  line = $0
  gsub(/\t/, "    ", line)
  if (line ~ /^[ ]*(#.*)?$/ || line ~ /^(---|\.\.\.)([ ]|$)/) next
  users_line(line)
  next
}
{
  sub(/\r$/, "")
  line = $0
  gsub(/\t/, "    ", line)
  if (blk) {                               # inside a "- |" block scalar
    if (line ~ /^[ ]*$/) { if (blk_n > 0) blk_buf = blk_buf "\n"; next }
    ind = indent_of(line)
    if (ind > blk_ind) {
      if (blk_min < 0) blk_min = ind
      text = substr(line, blk_min + 1)
      if (blk_n == 0) blk_buf = text
      else if (blk_fold) blk_buf = blk_buf " " text
      else blk_buf = blk_buf "\n" text
      blk_n++
      next
    }
    end_block()
  }
  if (line ~ /^[ ]*(#.*)?$/) next          # blank and comment lines
  if (line ~ /^(---|\.\.\.)([ ]|$)/) next  # document markers
  handle(line)
}
END {
  if (mode == "users") { u_flush(); exit }
  if (blk) end_block()
  if (mode == "scalar" && found) print value
}
