package kafkabus

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Run consumes until ctx is cancelled: fetch → handle → commit, one message at a time, or a
// batch at a time with a BatchHandler. An offset is committed only after its message (and,
// in a batch, every message before it) was handled.
//
// The consumer takes part in the group through kafka-go's ConsumerGroup and reads each
// partition of a generation itself, rather than through kafka-go's group Reader, so that an
// offset is only ever committed by the generation its message was fetched in. The Reader
// commits a batch that was still being handled when a rebalance began with the next
// generation's id, which the coordinator accepts: the partition may have moved to another
// member, which has committed further meanwhile, and the late commit moves its offset back
// (segmentio/kafka-go#1308; the offset then stays behind until the partition gets a new
// message, and a restart handles those messages again). See consumeGeneration.
func (c *Consumer) Run(ctx context.Context) error {
	o := c.options()
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     c.Group,
		Brokers:                c.Brokers,
		Topics:                 c.Topics,
		HeartbeatInterval:      1 * time.Second,
		SessionTimeout:         10 * time.Second,
		RebalanceTimeout:       10 * time.Second,
		JoinGroupBackoff:       500 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            kafka.FirstOffset,
		ErrorLogger:            c.kafkaLogger("kafka group: "),
	})
	if err != nil {
		return fmt.Errorf("kafka consumer group %s: %w", c.Group, err)
	}
	defer group.Close()
	// Closing the group as soon as ctx ends, before the generation's consumer has returned,
	// makes the group leave instead of joining once more on its way out.
	defer context.AfterFunc(ctx, func() { group.Close() })()

	if lagEvery := cmp.Or(c.LagInterval, DefaultLagInterval); lagEvery > 0 {
		lagCtx, stopLag := context.WithCancel(ctx)
		lagDone := make(chan struct{})
		go func() { defer close(lagDone); c.reportLag(lagCtx, lagEvery) }()
		defer func() { stopLag(); <-lagDone }()
	}
	// A generation's partition readers are stopped when it ends but not waited for there: a
	// reader in the middle of an empty fetch returns only when the broker answers it, up to
	// fetchMaxWait later, and the member's next join should not wait for that. Run waits for
	// them before it returns.
	var readers sync.WaitGroup
	defer readers.Wait()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The group backs off before it tries again (JoinGroupBackoff).
			c.Log.Warn("kafka group join failed", "group", c.Group, "err", err)
			continue
		}
		if !c.consumeGeneration(ctx, gen, o, &readers) {
			return nil
		}
	}
}

// consumeOptions are the Consumer's settings with the defaults applied.
type consumeOptions struct {
	handle     BatchHandler
	maxBatch   int
	batchWait  time.Duration
	maxBackoff time.Duration
	// commitEvery is how often handled offsets are committed; 0 commits after every batch.
	commitEvery time.Duration
}

func (c *Consumer) options() consumeOptions {
	o := consumeOptions{handle: c.BatchHandler, maxBatch: 1, maxBackoff: cmp.Or(c.MaxBackoff, DefaultMaxBackoff)}
	if o.handle == nil {
		o.handle = func(_ context.Context, batch []Message) []error {
			return []error{c.Handler(batch[0].Ctx, batch[0].Message)}
		}
	} else {
		o.maxBatch, o.batchWait = c.MaxBatch, c.BatchWait
		if o.maxBatch <= 0 {
			o.maxBatch = DefaultMaxBatch
		}
		if o.batchWait <= 0 {
			o.batchWait = DefaultBatchWait
		}
	}
	switch {
	case c.CommitInterval == 0:
		o.commitEvery = DefaultCommitInterval
	case c.CommitInterval > 0:
		o.commitEvery = c.CommitInterval
	}
	return o
}

// consumeGeneration handles the messages of the partitions gen assigns this member until the
// generation ends (a rebalance: the coordinator asks every member to join again) or ctx
// does; false means ctx ended.
//
// It runs as one of the generation's functions (gen.Start), and the member joins the next
// generation only once they have all returned. So a batch being handled when a rebalance
// begins is finished and its offsets are committed with this generation's id, which the
// coordinator still accepts while it waits for the members to join again (and refuses once
// the next generation is formed), before any other member can be given its partitions.
func (c *Consumer) consumeGeneration(ctx context.Context, gen *kafka.Generation, o consumeOptions, readers *sync.WaitGroup) bool {
	result := make(chan bool, 1)
	gen.Start(func(genCtx context.Context) { result <- c.consumeAssigned(ctx, genCtx, gen, o, readers) })
	return <-result
}

func (c *Consumer) consumeAssigned(ctx, genCtx context.Context, gen *kafka.Generation, o consumeOptions, readers *sync.WaitGroup) bool {
	// live ends with the generation or with ctx, whichever ends first. Handlers get ctx
	// itself: a rebalance does not cancel a handling half-way, it only stops the retries.
	live, end := context.WithCancel(genCtx)
	defer end()
	defer context.AfterFunc(ctx, end)()

	// Each generation has its own channel: what its readers fetched after it ended is dropped
	// with it, never handed to the next.
	fetched := make(chan kafka.Message, max(100, o.maxBatch)) // a whole batch waits while the last one is handled
	for topic, partitions := range gen.Assignments {
		for _, p := range partitions {
			readers.Go(func() { c.fetchPartition(live, topic, p, fetched) })
		}
	}

	handled := offsets{}
	var tick <-chan time.Time
	if o.commitEvery > 0 {
		t := time.NewTicker(o.commitEvery)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]Message, 0, o.maxBatch)
	for live.Err() == nil { // checked before each select: a message may be ready too
		select {
		case <-live.Done():
		case <-tick:
			c.commit(gen, handled)
		case first := <-fetched:
			batch = append(batch[:0], Message{Message: first, Ctx: messageContext(ctx, first)})
			if o.maxBatch > 1 {
				batch = fillBatch(ctx, live, fetched, batch, o.maxBatch, o.batchWait)
			}
			ok := c.handle(ctx, live, o, batch)
			endMessageSpans(batch)
			if !ok { // ctx or the generation ended with the batch unfinished: it is not committed
				continue
			}
			for _, m := range batch {
				handled.add(m.Message)
				consumerLag.WithLabelValues(c.Group, m.Topic, strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
			}
			if o.commitEvery == 0 {
				c.commit(gen, handled)
			}
		}
	}
	c.commit(gen, handled)
	return ctx.Err() == nil
}

// fetchPartition reads one partition from the offset the generation assigned it at into
// fetched, until ctx ends.
func (c *Consumer) fetchPartition(ctx context.Context, topic string, p kafka.PartitionAssignment, fetched chan<- kafka.Message) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:          c.Brokers,
		Topic:            topic,
		Partition:        p.ID,
		MinBytes:         1,
		MaxBytes:         4 << 20,
		MaxWait:          fetchMaxWait,
		ReadBatchTimeout: 250 * time.Millisecond, // reading the messages of an answer already arriving
		ErrorLogger:      c.kafkaLogger("kafka reader: "),
	})
	defer r.Close()
	if err := r.SetOffset(p.Offset); err != nil { // the committed offset, or FirstOffset
		c.Log.Error("kafka reader refused its offset", "group", c.Group, "topic", topic, "partition", p.ID, "offset", p.Offset, "err", err)
		return
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.Log.Warn("kafka fetch failed", "group", c.Group, "topic", topic, "partition", p.ID, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		select {
		case fetched <- m:
		case <-ctx.Done():
			return
		}
	}
}

// fillBatch adds the messages that arrive within wait, up to max in all, and stops early when
// live ends. Each message's context derives from ctx.
func fillBatch(ctx, live context.Context, fetched <-chan kafka.Message, batch []Message, max int, wait time.Duration) []Message {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(batch) < max {
		select {
		case m := <-fetched:
			batch = append(batch, Message{Message: m, Ctx: messageContext(ctx, m)})
		case <-timer.C:
			return batch
		case <-live.Done():
			return batch
		}
	}
	return batch
}

// offsets are the next offsets to commit, by topic and partition.
type offsets map[string]map[int]int64

func (o offsets) add(m kafka.Message) {
	if o[m.Topic] == nil {
		o[m.Topic] = map[int]int64{}
	}
	o[m.Topic][m.Partition] = max(o[m.Topic][m.Partition], m.Offset+1)
}

// commit commits the handled offsets with gen's id and forgets them; when the commit fails
// they stay, for the next commit of the generation to carry. Offsets still uncommitted when
// the generation ends are dropped: their messages are handled again by the partition's next
// owner (at least once; handlers are idempotent).
func (c *Consumer) commit(gen *kafka.Generation, handled offsets) {
	if len(handled) == 0 {
		return
	}
	if err := gen.CommitOffsets(handled); err != nil {
		c.Log.Warn("kafka commit failed", "group", c.Group, "generation", gen.ID, "err", err)
		return
	}
	clear(handled)
}

func (c *Consumer) kafkaLogger(prefix string) kafka.Logger {
	return kafka.LoggerFunc(func(f string, a ...any) { c.Log.Debug(prefix + fmt.Sprintf(f, a...)) })
}
