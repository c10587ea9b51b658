import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Produces N records to a topic with kafka-clients, one Produce request each (every send waits
 * for its acknowledgement), then fetches them back from partition 0 with an assigned consumer.
 *
 * <p>Usage: KafkaClient HOST:PORT N TOPIC. Lines: "sent produce ok TOPIC PARTITION" and "received
 * TOPIC PARTITION OFFSET".
 */
public final class KafkaClient {
  private static final String CLIENT_ID = "beyla-kv-java";

  public static void main(String[] args) throws Exception {
    // The go-ahead: a test sends a line when the agent traces this process.
    new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
    String bootstrap = args[0];
    int count = Integer.parseInt(args[1]);
    String topic = args[2];

    Properties producerProps = new Properties();
    producerProps.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    producerProps.put(ProducerConfig.CLIENT_ID_CONFIG, CLIENT_ID);
    producerProps.put(ProducerConfig.ACKS_CONFIG, "all");
    producerProps.put(ProducerConfig.LINGER_MS_CONFIG, "0");
    producerProps.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    producerProps.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps)) {
      for (int i = 0; i < count; i++) {
        RecordMetadata sent =
            producer.send(new ProducerRecord<>(topic, 0, Integer.toString(i), "record " + i)).get();
        System.out.println("sent produce ok " + sent.topic() + " " + sent.partition());
      }
    }

    Properties consumerProps = new Properties();
    consumerProps.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    consumerProps.put(ConsumerConfig.CLIENT_ID_CONFIG, CLIENT_ID);
    consumerProps.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    consumerProps.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
    consumerProps.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
    consumerProps.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps)) {
      TopicPartition partition = new TopicPartition(topic, 0);
      consumer.assign(List.of(partition));
      consumer.seekToBeginning(List.of(partition));
      int received = 0;
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (received < count) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("only " + received + " of " + count + " records arrived");
        }
        for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
          System.out.println(
              "received " + record.topic() + " " + record.partition() + " " + record.offset());
          received++;
        }
      }
    }
  }
}
