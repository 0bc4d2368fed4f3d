package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// reportLag sets sbor_kafka_consumer_lag for every partition of the consumer's topics, now and
// every interval, from what the brokers say: the partition's end offset minus the group's
// committed offset (minus its first offset, if the group has committed nothing there yet).
//
// The handling loop also sets a partition's lag after each message it handles, but only for
// the partitions this replica reads, and only while messages arrive: a consumer that stopped
// making progress kept showing its last, small lag, and a replica that lost a partition in a
// rebalance kept the value it last saw. Every replica asks the brokers for the whole group,
// so every series is the group's current lag (the alerts and panels take the max per
// partition across replicas).
func (c *Consumer) reportLag(ctx context.Context, every time.Duration) {
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: 10 * time.Second}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := c.refreshLag(ctx, client); err != nil && ctx.Err() == nil {
			c.Log.Debug("kafka lag refresh failed", "group", c.Group, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refreshLag reads the group's committed offsets and the partitions' first and end offsets,
// and sets the lag of every partition it got all three for.
func (c *Consumer) refreshLag(ctx context.Context, client *kafka.Client) error {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: c.Topics})
	if err != nil {
		return err
	}
	partitions := map[string][]int{}
	bounds := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue // not created yet, say: nothing to report for it
		}
		for _, p := range t.Partitions {
			partitions[t.Name] = append(partitions[t.Name], p.ID)
			bounds[t.Name] = append(bounds[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(partitions) == 0 {
		return nil
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.Group, Topics: partitions})
	if err != nil {
		return err
	}
	if committed.Error != nil {
		return committed.Error
	}
	offsets, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: bounds})
	if err != nil {
		return err
	}
	var errs []error
	for topic, ps := range offsets.Topics {
		done := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			if p.Error == nil {
				done[p.Partition] = p.CommittedOffset
			}
		}
		for _, p := range ps {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error))
				continue
			}
			at, ok := done[p.Partition]
			if !ok {
				continue
			}
			if at < 0 { // nothing committed: the group starts from the first offset
				at = p.FirstOffset
			}
			consumerLag.WithLabelValues(c.Group, topic, strconv.Itoa(p.Partition)).Set(float64(max(0, p.LastOffset-at)))
		}
	}
	return errors.Join(errs...)
}
