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

// refreshLag sets the lag of every partition GroupLag could read.
func (c *Consumer) refreshLag(ctx context.Context, client *kafka.Client) error {
	lags, err := GroupLag(ctx, client, c.Group, c.Topics)
	for topic, partitions := range lags {
		for partition, lag := range partitions {
			consumerLag.WithLabelValues(c.Group, topic, strconv.Itoa(partition)).Set(float64(lag))
		}
	}
	return err
}

// GroupLag reads from the brokers how far group is behind on every partition of topics: the
// partition's end offset minus the group's committed offset (minus its first offset, where
// the group has committed nothing yet), by topic and partition. Topics that do not exist
// yet are left out; partitions it could not read are left out with their errors joined.
func GroupLag(ctx context.Context, client *kafka.Client, group string, topics []string) (map[string]map[int]int64, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, err
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
		return nil, nil
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: partitions})
	if err != nil {
		return nil, err
	}
	if committed.Error != nil {
		return nil, committed.Error
	}
	offsets, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: bounds})
	if err != nil {
		return nil, err
	}
	lags := map[string]map[int]int64{}
	var errs []error
	for topic, ps := range offsets.Topics {
		done := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("%s/%d committed: %w", topic, p.Partition, p.Error))
				continue
			}
			done[p.Partition] = p.CommittedOffset
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
			if lags[topic] == nil {
				lags[topic] = map[int]int64{}
			}
			lags[topic][p.Partition] = max(0, p.LastOffset-at)
		}
	}
	return lags, errors.Join(errs...)
}
