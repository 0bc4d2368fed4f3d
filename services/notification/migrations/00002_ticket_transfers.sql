-- +goose Up
-- Transfers (issue 10): ticket.transferred notifies the former holder (ticket_transferred_out)
-- and the recipient (ticket_transferred_in).
ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check
    CHECK (type IN ('ticket.purchased', 'event.cancelled', 'event.reminder', 'ticket_transferred_out', 'ticket_transferred_in'));

-- +goose Down
DELETE FROM notifications WHERE type IN ('ticket_transferred_out', 'ticket_transferred_in');
ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check
    CHECK (type IN ('ticket.purchased', 'event.cancelled', 'event.reminder'));
