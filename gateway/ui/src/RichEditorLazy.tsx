// The reply body's editor, loaded when a reply is first opened: TipTap (ProseMirror) is
// the largest part of the app, and reading tickets needs none of it.
import { ComponentProps, lazy, Suspense } from "react";
import type { RichEditor as Eager } from "./RichEditor";
import { useI18n } from "./i18n";

export type { RichEditorHandle } from "./RichEditor";

const Loaded = lazy(() => import("./RichEditor").then((m) => ({ default: m.RichEditor })));

export function RichEditor(props: ComponentProps<typeof Eager>) {
  const { t } = useI18n();
  return (
    <Suspense fallback={<div className="muted small editor-loading">{t("list.loading")}</div>}>
      <Loaded {...props} />
    </Suspense>
  );
}
