// Sets the SCRAM credentials of one Kafka user, the password from the environment (never the command line,
// which `ps` shows anyone). Run by `cart services up` (app/tools/services.py) as a single-file program:
// java -cp <kafka classpath> services/kafka/SetScram.java, with CART_KAFKA_ADMIN_BOOTSTRAP, CART_SCRAM_USER, CART_SCRAM_PASSWORD.
import org.apache.kafka.clients.admin.*;
import java.util.*;

public class SetScram {
  public static void main(String[] args) throws Exception {
    var props = new Properties();
    props.put("bootstrap.servers", System.getenv("CART_KAFKA_ADMIN_BOOTSTRAP"));
    var user = System.getenv("CART_SCRAM_USER");
    var password = System.getenv("CART_SCRAM_PASSWORD");
    try (var admin = Admin.create(props)) {
      var upserts = new ArrayList<UserScramCredentialAlteration>();
      upserts.add(new UserScramCredentialUpsertion(user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), password));
      admin.alterUserScramCredentials(upserts).all().get();
      upserts.clear();
      upserts.add(new UserScramCredentialUpsertion(user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password));
      admin.alterUserScramCredentials(upserts).all().get();
    }
  }
}
