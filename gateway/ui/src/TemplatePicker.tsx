import { useEffect, useState } from "react";
import { api, Folder, Template, TicketDetail } from "./api";
import { useI18n } from "./i18n";

// The templates and phrases beside the reply (CMP-1, RTE-5): the ones suggested for this
// mail under their own heading, then every other template and phrase under theirs (each
// listed once), with its folder; searched as the operator types. With none at all, it
// says how to add one.

const SEARCH_DELAY_MS = 200;

export function TemplatePicker({
  ticket,
  mayManage,
  onInsert,
}: {
  ticket: TicketDetail;
  mayManage: boolean;
  onInsert: (tpl: Template) => void;
}) {
  const { t } = useI18n();
  const [templates, setTemplates] = useState<Template[] | null>(null);
  const [suggested, setSuggested] = useState<Template[]>([]);
  const [folders, setFolders] = useState<Folder[]>([]);
  const [tq, setTq] = useState("");

  useEffect(() => {
    const h = window.setTimeout(() => {
      void api
        .get<{ items: Template[] }>("/templates", { q: tq, inbox_id: ticket.inbox.id })
        .then((r) => setTemplates(r.items))
        .catch(() => setTemplates([]));
    }, SEARCH_DELAY_MS);
    return () => window.clearTimeout(h);
  }, [tq, ticket.inbox.id]);
  useEffect(() => {
    void api
      .get<{ items: { template: Template }[] }>(`/tickets/${ticket.id}/template-suggestions`)
      .then((r) => setSuggested(r.items.map((i) => i.template)))
      .catch(() => {});
    void api
      .get<{ items: Folder[] }>("/template-folders")
      .then((r) => setFolders(r.items))
      .catch(() => {});
  }, [ticket.id]);

  const searching = tq.trim() !== "";
  const shownSuggested = searching ? [] : suggested;
  const rest = (templates ?? []).filter((x) => !shownSuggested.some((s) => s.id === x.id));
  const folderOf = (tpl: Template) => folders.find((f) => f.id === tpl.folder_id)?.name ?? "";
  const item = (tpl: Template, testId: string) => (
    <li key={tpl.id}>
      <button className="link" onClick={() => onInsert(tpl)} title={tpl.subject || tpl.name} data-testid={testId}>
        {tpl.name}
      </button>
      {folderOf(tpl) && <span className="muted small"> · {folderOf(tpl)}</span>}
    </li>
  );
  const group = (kind: Template["kind"], heading: "reply.templates_all" | "reply.phrases") => {
    const list = rest.filter((x) => x.kind === kind);
    if (list.length === 0) return null;
    return (
      <section data-testid={`picker-${kind}s`}>
        <h4>{t(heading)}</h4>
        <ul>{list.map((tpl) => item(tpl, "template-item"))}</ul>
      </section>
    );
  };

  return (
    <aside className="picker" data-testid="template-picker">
      <strong>{t("reply.templates")}</strong>
      <input
        type="search"
        placeholder={t("reply.template_search")}
        value={tq}
        onChange={(e) => setTq(e.target.value)}
        data-testid="template-search"
      />
      {shownSuggested.length > 0 && (
        <section data-testid="picker-suggested">
          <h4>{t("reply.suggested")}</h4>
          <ul>{shownSuggested.map((tpl) => item(tpl, "template-suggested"))}</ul>
        </section>
      )}
      {group("template", "reply.templates_all")}
      {group("phrase", "reply.phrases")}
      {templates !== null && templates.length === 0 && (
        <p className="muted small" data-testid="picker-empty">
          {searching ? t("reply.templates_no_match", { q: tq.trim() }) : t("reply.templates_none")}{" "}
          {!searching && mayManage && <a href="#/admin/templates">{t("reply.templates_add")}</a>}
        </p>
      )}
    </aside>
  );
}
