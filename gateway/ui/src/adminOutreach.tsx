// Administration → 配信停止リスト (issue 20, OUT-6): the addresses no campaign mails any more —
// unsubscribed by the customer, bounced, or added here by hand — with why and since when;
// searched, one added, one removed (it may be mailed again).
import { api } from "./api";
import { Ctx, Row, Section, str } from "./adminTypes";
import { Key } from "./i18n";

export function outreachSections(ctx: Ctx): Section[] {
  const { t, dateTime } = ctx;
  return [
    {
      key: "suppressions",
      title: "sup.title",
      permission: "manage_outreach",
      help: "sup.help",
      load: async (query, cursor) => {
        const r = await api.get<{ suppressions: Row[]; next_cursor: string }>("/suppressions", { query: query.query, cursor });
        return { rows: r.suppressions, next: r.next_cursor || null };
      },
      filters: [{ name: "query", label: "sup.search", kind: "text" }],
      columns: [
        { label: "sup.address", value: (r) => str(r.address), mono: true },
        { label: "sup.reason", value: (r) => t(`sup.reason.${str(r.reason)}` as Key) },
        { label: "sup.created_at", value: (r) => dateTime(r.created_at) },
      ],
      fields: [{ name: "address", label: "sup.address", kind: "text" }],
      create: (body) => api.post("/suppressions", body),
      remove: (r) => api.del(`/suppressions/${encodeURIComponent(str(r.address))}`),
      removeLabel: "sup.remove",
      id: (r) => str(r.address),
    },
  ];
}
