package health.lumen.search;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A real, single OpenSearch 2.19 node in one JVM, for lumen-otel's tests only.
 *
 * <p>Usage: {@code java -Xmx512m -cp 'build/opensearch-node/lib/*' health.lumen.search.EmbeddedNode
 * HOME_DIR HTTP_PORT TRANSPORT_PORT}. It binds 127.0.0.1 only, runs single-node discovery with no
 * security plugin, keeps data and logs under HOME_DIR, prints one {@code lumen-test-node started}
 * line once the HTTP API is bound, and closes the node cleanly on SIGTERM.
 *
 * <p>Like OpenSearch's own test {@code MockNode}, it subclasses {@link Node} to hand the
 * {@link Netty4Plugin} (the HTTP and transport layers) to the node as a classpath plugin: the
 * public constructor only loads plugins from a {@code plugins/} directory.
 */
public final class EmbeddedNode extends Node {

    private static final Collection<Class<? extends Plugin>> PLUGINS = List.of(Netty4Plugin.class);

    private EmbeddedNode(Environment environment) {
        super(environment, PLUGINS, true);
    }

    static Settings settings(Path home, int httpPort, int transportPort) {
        return Settings.builder()
            .put("cluster.name", "lumen-test")
            .put("node.name", "lumen-test-node")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", Integer.toString(httpPort))
            .put("transport.port", Integer.toString(transportPort))
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("discovery.type", "single-node")
            // a tmp dir on a busy CI disk must not flip indices to read-only
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true)
            .build();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EmbeddedNode HOME_DIR HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        long started = System.nanoTime();
        Path home = Paths.get(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("config"));
        Settings settings = settings(home, Integer.parseInt(args[1]), Integer.parseInt(args[2]));
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName("lumen-test-node");
        LogConfigurator.configureWithoutConfig(settings);

        Environment environment =
            InternalSettingsPreparer.prepareEnvironment(settings, java.util.Map.of(), home.resolve("config"), () -> "lumen-test-node");
        EmbeddedNode node = new EmbeddedNode(environment);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "lumen-test-node-shutdown"));
        node.start();
        System.out.printf("lumen-test-node started on 127.0.0.1:%s in %d ms%n",
            args[1], (System.nanoTime() - started) / 1_000_000);
        System.out.flush();
        stopped.await();
    }
}
