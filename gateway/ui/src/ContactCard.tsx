import { Fragment, useEffect, useState } from "react";
import { api, Contact, STATUSES, Ticket, TicketDetail } from "./api";
import { go } from "./App";
import { channelOfAddress, ChannelIcon } from "./channels";
import { Key, useI18n } from "./i18n";

// The customer's card beside a ticket: company, phones, custom fields and memo from the
// address book, their other tickets on request and a link to the contact.
export function ContactCard({ ticket }: { ticket: TicketDetail }) {
  const { t } = useI18n();
  const [history, setHistory] = useState<Ticket[] | null>(null);
  const [contact, setContact] = useState<Contact | null>(null);
  const contactId = ticket.contact_id;
  // a channel's customer has a conversation, not an address: its pseudo-address is not shown
  const via = channelOfAddress(ticket.from.address);
  useEffect(() => {
    if (!contactId) {
      setContact(null);
      return;
    }
    api.get<Contact>(`/contacts/${contactId}`).then(setContact, () => setContact(null));
  }, [contactId]);

  const showHistory = async () => {
    if (!contactId) return;
    const r = await api.get<{ items: Ticket[] }>("/tickets", { contact: contactId, status: STATUSES.join(","), limit: 50 });
    setHistory(r.items);
  };

  return (
    <div className="contact" data-testid="contact-card">
      <strong>{ticket.from.name}</strong>
      {contact?.vip && <span className="badge vip" data-testid="contact-vip-badge">{t("contacts.vip")}</span>}
      <div className="small" data-testid="customer-address">
        {via ? (
          <>
            <ChannelIcon kind={via} /> {t("chat.contact_via", { channel: t(`chan.${via}` as Key) })}
          </>
        ) : (
          ticket.from.address
        )}
      </div>
      {contact && (contact.company || contact.phones.length > 0 || contact.memo || contact.customer_value != null || Object.keys(contact.custom).length > 0) && (
        <dl className="small facts" data-testid="contact-facts">
          {contact.company && (
            <>
              <dt>{t("contacts.company")}</dt>
              <dd>{contact.company}</dd>
            </>
          )}
          {contact.customer_value != null && (
            <>
              <dt>{t("contacts.customer_value")}</dt>
              <dd data-testid="contact-value-fact">{contact.customer_value.toLocaleString()}</dd>
            </>
          )}
          {contact.phones.length > 0 && (
            <>
              <dt>{t("contacts.phones")}</dt>
              <dd>{contact.phones.join(", ")}</dd>
            </>
          )}
          {Object.entries(contact.custom).map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
          {contact.memo && (
            <>
              <dt>{t("contacts.memo")}</dt>
              <dd className="pre">{contact.memo}</dd>
            </>
          )}
        </dl>
      )}
      {ticket.contact_id && (
        <>
          <button className="link" onClick={showHistory} data-testid="history">{t("ticket.history")}</button>
          <a className="small" href={`#/contacts/${ticket.contact_id}`}>{t("nav.contacts")}</a>
        </>
      )}
      {history && (
        <ul className="small">
          {history.map((h) => (
            <li key={h.id}>
              <a href={`#/tickets/${h.id}`} onClick={() => go(`/tickets/${h.id}`)}>#{h.number} {h.subject}</a>{" "}
              <span className="muted">{t(`status.${h.status}` as Key)}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
