/** Shell completion scripts, generated from the commands commander knows. */
import type { Command } from "commander";

function words(program: Command): { top: string[]; sub: Record<string, string[]> } {
  const top = program.commands.map((c) => c.name());
  const sub = Object.fromEntries(program.commands.filter((c) => c.commands.length > 0).map((c) => [c.name(), c.commands.map((s) => s.name())]));
  return { top, sub };
}

export function completionScript(program: Command, shell: "bash" | "zsh"): string {
  const { top, sub } = words(program);
  const cases = Object.entries(sub)
    .map(([name, subs]) => `    ${name}) COMPREPLY=( $(compgen -W "${subs.join(" ")}" -- "$cur") ); return ;;`)
    .join("\n");
  const bash = `# hangar completion for bash: eval "$(hangar completion bash)"
_hangar() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=( $(compgen -W "${top.join(" ")}" -- "$cur") ); return; fi
  case "\${COMP_WORDS[1]}" in
${cases}
    ls|completion|login|image|pool|events) ;;
    *) if [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=( $(compgen -W "$(hangar ls --names 2>/dev/null)" -- "$cur") ); fi ;;
  esac
}
complete -F _hangar hangar
`;
  if (shell === "bash") return bash;
  return `# hangar completion for zsh: eval "$(hangar completion zsh)"
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}
