/** Shell completion scripts, generated from the commands commander knows. */
import type { Command } from "commander";

/** What a command line can go on with: a command's path ("get", "snapshot ls"), its options, and where VM names go. */
interface Spec {
  path: string;
  subcommands: string[];
  options: string[];
  /** Options that take a value: the word after one is no argument. */
  valued: string[];
  /** "one": its first argument is a VM; "many": every argument is (start a b c). */
  vm: "one" | "many" | "none";
}

function spec(command: Command, path: string): Spec {
  const [first] = command.registeredArguments;
  const options = command.options.flatMap((o) => [o.long, o.short].filter((flag): flag is string => Boolean(flag)));
  const valued = command.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((flag): flag is string => Boolean(flag)));
  const vm = first?.name() === "vm" ? (first.variadic ? "many" : "one") : "none";
  return { path, subcommands: command.commands.map((c) => c.name()), options, valued, vm };
}

function specs(program: Command): Spec[] {
  return [spec(program, ""), ...program.commands.flatMap((c) => [spec(c, c.name()), ...c.commands.map((s) => spec(s, `${c.name()} ${s.name()}`))])];
}

/** A bash `case` arm per command that has something to say. */
const arms = (all: Spec[], value: (s: Spec) => string) =>
  all
    .map((s) => [s.path, value(s)] as const)
    .filter(([, v]) => v !== "")
    .map(([path, v]) => `    "${path}") echo "${v}" ;;`)
    .join("\n");

export function completionScript(program: Command, shell: "bash" | "zsh"): string {
  const all = specs(program);
  // The command's path is found past options (--json first, --cpus 2 anywhere), so the
  // arguments are counted as commander counts them: VM names wherever a VM goes.
  const bash = `# hangar completion for bash: eval "$(hangar completion bash)"
_hangar_words() {
  case "$1" in
${arms(all, (s) => s.subcommands.join(" "))}
  esac
}
_hangar_options() {
  case "$1" in
${arms(all, (s) => s.options.join(" "))}
  esac
}
_hangar_valued() {
  case "$1" in
${arms(all, (s) => s.valued.join(" "))}
  esac
}
_hangar_vm() {
  case "$1" in
${arms(all, (s) => (s.vm === "none" ? "" : s.vm))}
  esac
}
_hangar() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" n=0 i w skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [ "$skip" -eq 1 ]; then skip=0; continue; fi
    case "$w" in
      --*=*) continue ;;
      -*) case " $(_hangar_valued "$cmd") " in *" $w "*) skip=1 ;; esac; continue ;;
    esac
    if [ "$n" -eq 0 ] && [ -n "$(_hangar_words "$cmd")" ]; then cmd="\${cmd:+$cmd }$w"; else n=$((n + 1)); fi
  done
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$(_hangar_options "$cmd") \${cmd:+--json} --help" -- "$cur") ); return; fi
  local words; words="$(_hangar_words "$cmd")"
  if [ -n "$words" ]; then COMPREPLY=( $(compgen -W "$words" -- "$cur") ); return; fi
  case "$(_hangar_vm "$cmd")" in
    many) ;;
    one) [ "$n" -eq 0 ] || return ;;
    *) return ;;
  esac
  COMPREPLY=( $(compgen -W "$(hangar ls --names 2>/dev/null)" -- "$cur") )
}
complete -F _hangar hangar
`;
  if (shell === "bash") return bash;
  return `# hangar completion for zsh: eval "$(hangar completion zsh)"
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}
