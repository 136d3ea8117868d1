/**
 * A VM's tags as chips. With `onPick`, each chip is a button that lists the VMs with that tag
 * (the inventory); without, plain text (the VM page).
 */
export function TagChips({ tags, onPick }: { tags: readonly string[]; onPick?: (tag: string) => void }) {
  if (tags.length === 0) return null;
  return (
    <span className="tags" data-testid="vm-tags">
      {tags.map((tag) =>
        onPick ? (
          <button key={tag} type="button" className="tag" title={`List the VMs tagged ${tag}`} onClick={() => onPick(tag)}>
            {tag}
          </button>
        ) : (
          <span key={tag} className="tag">
            {tag}
          </span>
        ),
      )}
    </span>
  );
}
