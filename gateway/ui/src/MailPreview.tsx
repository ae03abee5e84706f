import { useState } from "react";
import { Preview } from "./api";
import { Dialog } from "./Dialog";
import { useFormat } from "./format";
import { useI18n } from "./i18n";
import { MailFrame } from "./MailView";

// The mail a draft will become, as the customer's mail program shows it (GET
// /drafts/{id}/preview): from, to, cc, bcc, subject, date, the body and the files. The
// reply editor's preview and the approval request view show it the same way.

/** The draft's own images inside its HTML (cid:), shown from its attachments. */
function inlineOf(p: Preview): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of p.attachments) if (a.inline && a.content_id) out[a.content_id] = a.download_url;
  return out;
}

export const addressText = (a: { name: string; address: string }) => (a.name ? `${a.name} <${a.address}>` : a.address);

/** `date`: when it goes out (a scheduled send), else the preview's example date. */
export function MailPreview({ preview, date, scheduled }: { preview: Preview; date?: string | null; scheduled: boolean }) {
  const { t } = useI18n();
  const { dateTime, zone } = useFormat();
  return (
    <>
      <table className="headers" data-testid="preview-fields">
        <tbody>
          <tr>
            <th>{t("reply.from")}</th>
            <td data-testid="preview-from">{addressText(preview.from)}</td>
          </tr>
          <tr>
            <th>{t("reply.to")}</th>
            <td data-testid="preview-to">{preview.to.map(addressText).join(", ")}</td>
          </tr>
          {preview.cc.length > 0 && (
            <tr>
              <th>{t("reply.cc")}</th>
              <td data-testid="preview-cc">{preview.cc.map(addressText).join(", ")}</td>
            </tr>
          )}
          {preview.bcc.length > 0 && (
            <tr>
              <th>{t("reply.bcc")}</th>
              <td>
                {preview.bcc.join(", ")} <span className="muted small">{t("preview.bcc_hidden")}</span>
              </td>
            </tr>
          )}
          <tr>
            <th>{t("reply.subject")}</th>
            <td data-testid="preview-subject">{preview.subject}</td>
          </tr>
          <tr>
            <th>{t("preview.date")}</th>
            <td data-testid="preview-date">
              {dateTime(date ?? preview.date)} <span className="muted small">{zone()}</span>{" "}
              {!scheduled && <span className="muted small">{t("preview.date_now")}</span>}
            </td>
          </tr>
        </tbody>
      </table>
      {preview.html ? (
        <MailFrame html={preview.html} images inline={inlineOf(preview)} />
      ) : (
        <pre className="mailtext" data-testid="preview-text">{preview.text}</pre>
      )}
      {preview.attachments.some((a) => !a.inline) && (
        <div className="attachments" data-testid="preview-attachments">
          <strong>{t("mail.attachments")}</strong>
          <ul>
            {preview.attachments.filter((a) => !a.inline).map((a) => (
              <li key={a.download_url}>
                {a.filename} <span className="muted small">({Math.ceil(a.size / 1024)} KB)</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </>
  );
}

/** The preview in a dialog, with the raw source on request (not for a masked caller). */
export function PreviewDialog({
  preview,
  date,
  scheduled,
  onClose,
}: {
  preview: Preview;
  date?: string | null;
  scheduled: boolean;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const [source, setSource] = useState(false);
  return (
    <Dialog wide label={t("preview.title")} testId="preview-dialog" onClose={onClose}>
      <h2>{t("preview.title")}</h2>
      <MailPreview preview={preview} date={date} scheduled={scheduled} />
      {source && preview.source !== null && (
        <>
          <pre className="mailtext source" data-testid="preview-source">{preview.source}</pre>
          {preview.source_truncated && <p className="muted small">{t("preview.source_truncated")}</p>}
        </>
      )}
      <div className="actions">
        <button
          onClick={() => setSource(!source)}
          disabled={preview.source === null}
          title={preview.source === null ? t("preview.source_masked") : ""}
          aria-expanded={source}
          data-testid="preview-show-source"
        >
          {source ? t("preview.hide_source") : t("preview.show_source")}
        </button>
        <span className="spacer" />
        <button onClick={onClose} autoFocus data-testid="preview-close">{t("common.close")}</button>
      </div>
    </Dialog>
  );
}
