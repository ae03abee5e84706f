import { ReactNode, useEffect, useRef } from "react";

// The app's one modal dialog. Esc closes the dialog on top (and only it: the key goes no
// further, so it neither closes the reply editor nor leaves the ticket behind the
// dialog); a click beside it closes it too unless `modal` says it must be answered; focus
// moves into it and comes back where it was when it closes.

const open: number[] = []; // the dialogs shown, the last on top
let next = 0;

/** Whether a key press is free for a screen's single-key shortcuts (r, j, k, x, /, ?,
 * Esc to go back…): not typed into a field, without Ctrl, Alt or Meta, and no dialog
 * open — while one is shown, its keys are the only ones that do anything. */
export function shortcutKey(e: KeyboardEvent): boolean {
  const target = e.target as HTMLElement;
  const tag = target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return false;
  return !e.ctrlKey && !e.metaKey && !e.altKey && open.length === 0;
}

export function Dialog({
  label,
  testId,
  wide,
  onClose,
  backdropCloses = true,
  children,
}: {
  label: string;
  testId?: string;
  wide?: boolean;
  onClose: () => void;
  backdropCloses?: boolean;
  children: ReactNode;
}) {
  const box = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;
  const before = useRef(document.activeElement as HTMLElement | null); // at the first render

  useEffect(() => {
    const id = ++next;
    open.push(id);
    if (box.current && !box.current.contains(document.activeElement)) box.current.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape" || open[open.length - 1] !== id) return;
      e.preventDefault();
      e.stopPropagation();
      close.current();
    };
    window.addEventListener("keydown", onKey, true); // before anything else hears it
    return () => {
      window.removeEventListener("keydown", onKey, true);
      open.splice(open.indexOf(id), 1);
      const back = before.current;
      if (back && document.contains(back)) back.focus();
    };
  }, []);

  return (
    <div className="modal-back" onClick={() => backdropCloses && close.current()}>
      <div
        ref={box}
        className={wide ? "modal wide" : "modal"}
        role="dialog"
        aria-modal="true"
        aria-label={label}
        tabIndex={-1}
        data-testid={testId}
        onClick={(e) => e.stopPropagation()}
      >
        {children}
      </div>
    </div>
  );
}
