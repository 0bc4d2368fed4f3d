// Package cloudevent is the envelope of every Kafka message Sbor publishes: CloudEvents 1.0 in
// structured JSON mode, keyed by the aggregate id so one aggregate's history stays ordered.
package cloudevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents version Sbor speaks.
const SpecVersion = "1.0"

// Event types. Each is also the name of the topic it travels on.
const (
	TypeEventPublished    = "event.published"
	TypeEventUpdated      = "event.updated"
	TypeEventCancelled    = "event.cancelled"
	TypeEventReminder     = "event.reminder"
	TypeTicketPurchased   = "ticket.purchased"
	TypeTicketCheckin     = "ticket.checkin"
	TypeTicketTransferred = "ticket.transferred"

	// Deprecated: misspelt; use TypeTicketTransferred.
	TypeTicketTransfered = TypeTicketTransferred
)

// Topics lists every topic the platform uses.
var Topics = []string{
	TypeEventPublished, TypeEventUpdated, TypeEventCancelled, TypeEventReminder,
	TypeTicketPurchased, TypeTicketCheckin, TypeTicketTransferred,
}

// Event is a CloudEvent with a JSON data payload.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data"`
	// TraceParent and TraceState are the CloudEvents Distributed Tracing extension: the W3C
	// trace context of the change that produced the event, for producers that cannot set
	// message headers (the ticket service's purchase statement writes its outbox rows
	// itself); the outbox relay copies them into the Kafka headers consumers read.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// New builds an event of the given type about subject, with data marshalled to JSON.
func New(source, typ, subject string, at time.Time, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("marshal %s data: %w", typ, err)
	}
	return Event{
		SpecVersion: SpecVersion, ID: uuid.NewString(), Source: source, Type: typ,
		Time: at.UTC(), Subject: subject, DataContentType: "application/json", Data: raw,
	}, nil
}

// ErrInvalid marks a message that is not a valid CloudEvent; retrying it cannot help.
var ErrInvalid = errors.New("invalid cloudevent")

// Decode parses and validates a structured-mode CloudEvent.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case e.SpecVersion != SpecVersion:
		return Event{}, fmt.Errorf("%w: specversion %q", ErrInvalid, e.SpecVersion)
	case e.ID == "" || e.Source == "" || e.Type == "":
		return Event{}, fmt.Errorf("%w: id, source and type are required", ErrInvalid)
	case len(e.Data) == 0 || string(e.Data) == "null":
		return Event{}, fmt.Errorf("%w: data is required", ErrInvalid)
	}
	return e, nil
}

// DecodeData unmarshals the event's data into dst, strictly enough to catch a wrong type.
func (e Event) DecodeData(dst any) error {
	if err := json.Unmarshal(e.Data, dst); err != nil {
		return fmt.Errorf("%w: data of %s: %v", ErrInvalid, e.Type, err)
	}
	return nil
}
