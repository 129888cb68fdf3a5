*** Settings ***
Documentation     SiFive HiFive1 Rev B (RV32IMAC, 16 KB DTIM): LeNet-5 and DS-CNN fit with fusion and
...               equal their baselines; MobileNetV2-w0.35 at 144x144 runs within 16 KB with its
...               input read in place (the board's default); ResNet-8 with its input copied into
...               the arena fits only above 1.2x its MACs and is refused cleanly at 1.2x (exit 3,
...               saying the lowest achievable overhead).
Resource          resources/msfsim.resource
Suite Setup       Require Backend    ${BACKEND}    ${PLATFORM}


*** Variables ***
${PLATFORM}     hifive1b
${BASELINES}    ${CURDIR}/baselines/hifive1b.json


*** Test Cases ***    MODEL          PLATFORM
Plan fits 16 KB and matches baseline
    [Template]    Fused Plan Should Fit And Match Baseline
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Outputs are bit-exact
    [Template]    Fused Plan Output Should Be Bit Exact
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Unicorn and QEMU agree
    [Template]    Fused Plan Backends Should Agree
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

MobileNetV2 runs within 16 KB
    [Documentation]    The min-RAM plan of mbv2-w0.35-r144, network input read in place: the whole
    ...    firmware (arena + stack + static) fits the 16 KB DTIM and is bit-exact.
    Load Model    zoo:mbv2-w0.35-r144
    Search Plan    ${PLATFORM}    objective=ram    cost=analytic
    Measure Plan    ${BACKEND}
    Plan Should Fit Board
    Peak RAM Should Be At Most    16K    measured
    Outputs Should Be Bit Exact    ${BACKEND}

ResNet-8 with its input in the arena is refused cleanly
    [Documentation]    Copying the 3 KB input into the arena, no plan within 1.2x the layer-by-layer
    ...    MACs fits 16 KB (the least overhead that fits is 1.28x): exit 3, one error line
    ...    naming the lowest achievable overhead.
    ${error}=    Search Should Find No Plan    zoo:resnet8-r32    ${PLATFORM}
    ...    --max-overhead    1.2    --input-in-arena    message=lowest achievable
