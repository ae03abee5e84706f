// The body of a reply (CMP-5): an HTML editor on TipTap (ProseMirror) with a small toolbar,
// or a plain textarea. Pasted or dropped images are uploaded as inline attachments of the
// draft and shown from the gateway; the saved HTML names them `cid:<content_id>` (the
// server sanitises what is saved and sends them as parts of a multipart/related).
// "Plain text" (per reply, or always when the inbox sends plain text only) keeps the text.
import { ReactNode, RefObject, useEffect, useImperativeHandle, useRef, useState } from "react";
import { EditorContent, useEditor, Editor } from "@tiptap/react";
import StarterKit from "@tiptap/starter-kit";
import Image from "@tiptap/extension-image";
import { HardBreak } from "@tiptap/extension-hard-break";
import { Color, TextStyle } from "@tiptap/extension-text-style";
import { api, Attachment, Inbox } from "./api";
import { useI18n } from "./i18n";


// drawn here rather than as emoji, which a machine without an emoji font shows as boxes
const icon = (d: string) => (
  <svg width="14" height="14" viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth="1.6"
    strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
    <path d={d} />
  </svg>
);
const LINK_ICON = icon("M6.5 9.5l3-3M7 4.5l1.2-1.2a2.8 2.8 0 014 4L11 8.5M9 11.5l-1.2 1.2a2.8 2.8 0 01-4-4L5 7.5");
const IMAGE_ICON = icon("M2 3h12v10H2zM2 11l3.5-3.5 3 3 2-2L14 12M10.5 6a.5.5 0 100-1 .5.5 0 000 1");

export interface RichEditorHandle {
  /** Insert a rendered template or phrase where the cursor is; false in plain-text mode. */
  insert: (text: string, html: string) => boolean;
}

export interface BodyPatch {
  body_text: string;
  body_html: string;
}

const COLOURS = ["#000000", "#e03131", "#1971c2", "#2f9e44", "#f08c00"];

// an image of the draft: shown from the gateway, saved as cid:<content_id>
const InlineImage = Image.extend({
  addAttributes() {
    return {
      ...this.parent?.(),
      cid: {
        default: null,
        parseHTML: (el: HTMLElement) => {
          const src = el.getAttribute("src") ?? "";
          return el.getAttribute("data-cid") ?? (src.startsWith("cid:") ? src.slice(4) : null);
        },
        renderHTML: (attrs: Record<string, unknown>) => (attrs.cid ? { "data-cid": attrs.cid } : {}),
      },
    };
  },
});

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Plain text as paragraphs (switching to HTML, or a text-only template into the editor). */
export function textToHtml(text: string): string {
  if (!text.trim()) return "";
  return text
    .split(/\n{2,}/)
    .map((p) => p.replace(/^\n+|\n+$/g, ""))
    .filter((p) => p.trim())
    .map((p) => `<p>${escapeHtml(p).replace(/\n/g, "<br>")}</p>`)
    .join("");
}

/** The editor's HTML as saved: images as cid:, nothing else of the editor's own. */
function savedHtml(editor: Editor): string {
  if (editor.isEmpty) return "";
  const doc = new DOMParser().parseFromString(editor.getHTML(), "text/html");
  doc.querySelectorAll("img").forEach((img) => {
    const cid = img.getAttribute("data-cid");
    if (cid) img.setAttribute("src", `cid:${cid}`);
    else img.remove(); // not uploaded (yet): the server would drop it
    img.removeAttribute("data-cid");
  });
  return doc.body.innerHTML;
}

/** Saved HTML shown in the editor: cid: images from the draft's attachments. */
function shownHtml(html: string, attachments: Attachment[]): string {
  return html.replace(/\ssrc="cid:([^"]*)"/gi, (whole, cid: string) => {
    const a = attachments.find((x) => x.content_id === cid);
    return a ? ` src="${a.download_url}" data-cid="${escapeHtml(cid)}"` : whole;
  });
}

export function RichEditor({
  inboxId,
  text,
  html,
  attachments,
  onChange,
  onImage,
  handle,
  textareaRef,
}: {
  inboxId: string;
  text: string;
  html: string;
  attachments: Attachment[];
  onChange: (patch: BodyPatch) => void;
  onImage: (file: File) => Promise<Attachment | null>;
  handle: RefObject<RichEditorHandle | null>;
  textareaRef: RefObject<HTMLTextAreaElement | null>;
}) {
  const { t } = useI18n();
  const [plainOnly, setPlainOnly] = useState(false);
  // a draft written as text (or a text template) opens as text; a new one as HTML
  const [plain, setPlain] = useState(!html.trim() && !!text.trim());
  const imageInput = useRef<HTMLInputElement>(null);
  const onChangeRef = useRef(onChange);
  const onImageRef = useRef(onImage);
  onChangeRef.current = onChange;
  onImageRef.current = onImage;

  useEffect(() => {
    let gone = false;
    api
      .get<{ items: Inbox[] }>("/inboxes")
      .then((r) => {
        if (!gone && r.items.find((i) => i.id === inboxId)?.plain_text_only) setPlainOnly(true);
      })
      .catch(() => {});
    return () => {
      gone = true;
    };
  }, [inboxId]);

  const images = async (files: File[], at?: number) => {
    for (const file of files.filter((f) => f.type.startsWith("image/"))) {
      const a = await onImageRef.current(file);
      if (!a || !a.content_id || !editorRef.current) continue;
      const chain = editorRef.current.chain().focus();
      (at !== undefined ? chain.insertContentAt(at, imageNode(a)) : chain.insertContent(imageNode(a))).run();
    }
  };
  const imageNode = (a: Attachment) => ({
    type: "image",
    attrs: { src: a.download_url, alt: a.filename, cid: a.content_id },
  });

  const editor = useEditor({
    extensions: [
      StarterKit.configure({
        heading: false,
        codeBlock: false,
        hardBreak: false,
        link: { openOnClick: false, autolink: true },
      }),
      // Shift+Enter breaks a line; Ctrl+Enter is the editor's Send, not a line break
      HardBreak.extend({
        addKeyboardShortcuts() {
          return { "Shift-Enter": () => this.editor.commands.setHardBreak() };
        },
      }),
      InlineImage.configure({ inline: true, allowBase64: false }),
      TextStyle,
      Color,
    ],
    content: shownHtml(html || textToHtml(text), attachments),
    editorProps: {
      attributes: { class: "richbody", "data-testid": "body", "aria-label": t("reply.body") },
      handlePaste: (_view, event) => {
        const files = Array.from(event.clipboardData?.files ?? []).filter((f) => f.type.startsWith("image/"));
        if (!files.length) return false;
        event.preventDefault();
        void images(files);
        return true;
      },
      handleDrop: (view, event) => {
        const files = Array.from(event.dataTransfer?.files ?? []).filter((f) => f.type.startsWith("image/"));
        if (!files.length) return false;
        event.preventDefault();
        event.stopPropagation(); // not also a file attachment of the reply
        const pos = view.posAtCoords({ left: event.clientX, top: event.clientY })?.pos;
        void images(files, pos);
        return true;
      },
    },
    onUpdate: ({ editor: e }) => onChangeRef.current({ body_html: savedHtml(e), body_text: "" }),
  });
  const editorRef = useRef<Editor | null>(null);
  editorRef.current = editor;

  useImperativeHandle(handle, () => ({
    insert: (tplText: string, tplHtml: string) => {
      if (plain || plainOnly || !editorRef.current) return false;
      editorRef.current.chain().focus().insertContent(tplHtml.trim() ? tplHtml : textToHtml(tplText)).run();
      return true;
    },
  }));

  const toPlain = () => {
    const e = editorRef.current;
    const kept = e && !e.isEmpty ? e.getText({ blockSeparator: "\n\n" }).trim() : text;
    setPlain(true);
    onChange({ body_text: kept, body_html: "" });
  };
  const toHtml = () => {
    const e = editorRef.current;
    setPlain(false);
    if (!e) return;
    e.commands.setContent(textToHtml(text), { emitUpdate: false });
    onChange({ body_html: savedHtml(e), body_text: "" });
  };

  // an inbox that sends plain text only: HTML already written becomes its text, once
  useEffect(() => {
    if (!plainOnly || plain) return;
    if (html.trim()) toPlain();
    else setPlain(true);
  }, [plainOnly]);

  const asText = plain || plainOnly;
  const link = () => {
    const e = editorRef.current;
    if (!e) return;
    const url = window.prompt(t("rich.link_prompt"), e.getAttributes("link").href ?? "https://");
    if (url === null) return;
    if (!url.trim()) e.chain().focus().extendMarkRange("link").unsetLink().run();
    else e.chain().focus().extendMarkRange("link").setLink({ href: url.trim() }).run();
  };
  const tool = (label: string, testId: string, active: boolean, run: () => void, text: ReactNode) => (
    <button
      type="button"
      className={active ? "tool active" : "tool"}
      title={label}
      aria-label={label}
      aria-pressed={active}
      onMouseDown={(ev) => ev.preventDefault()}
      onClick={run}
      data-testid={testId}
    >
      {text}
    </button>
  );

  return (
    <div className="richeditor">
      <div className="row gap wrap richtools" role="toolbar" aria-label={t("rich.toolbar")}>
        {!asText && editor && (
          <>
            {tool(t("rich.bold"), "tool-bold", editor.isActive("bold"), () => editor.chain().focus().toggleBold().run(), "B")}
            {tool(t("rich.italic"), "tool-italic", editor.isActive("italic"), () => editor.chain().focus().toggleItalic().run(), "I")}
            {tool(t("rich.bullets"), "tool-bullets", editor.isActive("bulletList"), () => editor.chain().focus().toggleBulletList().run(), "•")}
            {tool(t("rich.numbers"), "tool-numbers", editor.isActive("orderedList"), () => editor.chain().focus().toggleOrderedList().run(), "1.")}
            {tool(t("rich.link"), "tool-link", editor.isActive("link"), link, LINK_ICON)}
            {tool(t("rich.quote"), "tool-quote", editor.isActive("blockquote"), () => editor.chain().focus().toggleBlockquote().run(), "❝")}
            <select
              aria-label={t("rich.colour")}
              title={t("rich.colour")}
              value=""
              onChange={(ev) => {
                const c = ev.target.value;
                if (c === "none") editor.chain().focus().unsetColor().run();
                else if (c) editor.chain().focus().setColor(c).run();
              }}
              data-testid="tool-colour"
            >
              <option value="">{t("rich.colour")}</option>
              <option value="none">{t("rich.colour_none")}</option>
              {COLOURS.map((c) => (
                <option key={c} value={c} style={{ color: c }}>■ {c}</option>
              ))}
            </select>
            {tool(t("rich.image"), "tool-image", false, () => imageInput.current?.click(), IMAGE_ICON)}
            <input
              ref={imageInput}
              type="file"
              accept="image/*"
              hidden
              onChange={(ev) => {
                if (ev.target.files) void images(Array.from(ev.target.files));
                ev.target.value = "";
              }}
              data-testid="image-input"
            />
          </>
        )}
        <span className="spacer" />
        <label className="check" title={plainOnly ? t("rich.plain_only") : ""}>
          <input
            type="checkbox"
            checked={asText}
            disabled={plainOnly}
            onChange={(ev) => (ev.target.checked ? toPlain() : toHtml())}
            data-testid="plain-toggle"
          />{" "}
          {t("rich.plain")}
        </label>
      </div>
      {plainOnly && <p className="muted small" data-testid="plain-only">{t("rich.plain_only")}</p>}
      {asText ? (
        <textarea
          ref={textareaRef}
          className="body"
          rows={12}
          aria-label={t("reply.body")}
          value={text}
          onChange={(e) => onChange({ body_text: e.target.value, body_html: "" })}
          data-testid="body"
          autoFocus
        />
      ) : (
        <EditorContent editor={editor} className="body richwrap" />
      )}
    </div>
  );
}
